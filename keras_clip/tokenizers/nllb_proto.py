"""NLLB's tokenizer as one SentencePiece BPE model in its checkpoint's id
order.

NLLB-200 (NLLB-CLIP's text tower) tokenises with a SentencePiece BPE model
under fairseq's dictionary ("<s>", "<pad>", "</s>", "<unk>" at 0-3, every
other piece one id up) and adds a token per language ("eng_Latn", ...)
after the pieces, with "<mask>". Its `tokenizer.json` (which the Hugging
Face checkpoint ships, and which transformers 5 saves) holds all of it: the
BPE vocabulary in id order, the normaliser (SentencePiece's precompiled
character map) and the added tokens with their ids. This module turns it
into a SentencePiece BPE model proto whose piece i is id i: each piece
scored by minus its id, so that SentencePiece merges in the order the
vocabulary was learned (as the original model's scores do), and the added
tokens appended as control pieces, so tensorflow-text's SentencePiece op
gives transformers' ids in the graph. `tests/test_nllb_tokenizer.py` checks
the ids against transformers' `NllbTokenizer` and open_clip's `HFTokenizer`.

Example:

```python
with open("nllb-200-distilled-600M/tokenizer.json", encoding="utf-8") as f:
    model = nllb_model_from_tokenizer_json(json.load(f))
```
"""

from keras_clip.tokenizers.sentencepiece_proto import BPE
from keras_clip.tokenizers.sentencepiece_proto import CONTROL
from keras_clip.tokenizers.sentencepiece_proto import NORMAL
from keras_clip.tokenizers.sentencepiece_proto import serialized_model
from keras_clip.tokenizers.unigram_proto import FAIRSEQ_SPECIALS
from keras_clip.tokenizers.unigram_proto import normalizer_spec_of


def _check_bpe(model):
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ValueError(
            "NLLB's tokenizer.json holds a BPE model without byte fallback; this one has "
            f"model type {model.get('type')!r}, byte_fallback={model.get('byte_fallback')!r}."
        )
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
        if model.get(key):
            raise ValueError(f"tokenizer.json's BPE option {key}={model[key]!r} is not supported.")


def nllb_model_from_tokenizer_json(tokenizer_json):
    """Serialized SentencePiece BPE `ModelProto` bytes of NLLB's
    `tokenizer.json` (a parsed dict), in its id order, added tokens included.

    Args:
        tokenizer_json: dict, the parsed `tokenizer.json`.

    Returns:
        bytes for `SentencePieceTokenizer(model=...)`.
    """
    model = tokenizer_json.get("model") or {}
    _check_bpe(model)
    order = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in order] != list(range(len(order))):
        raise ValueError("tokenizer.json's BPE vocabulary does not number its pieces 0 to n-1.")
    specials = dict(FAIRSEQ_SPECIALS)
    if [piece for piece, _ in order[:4]] != list(specials):
        raise ValueError(
            f"NLLB's vocabulary starts with {list(specials)} (fairseq's dictionary); this one "
            f"starts with {[piece for piece, _ in order[:4]]}."
        )
    pieces = [
        (piece, 0.0, specials[piece]) if i < 4 else (piece, -float(i), NORMAL) for piece, i in order
    ]
    added = sorted(tokenizer_json.get("added_tokens", []), key=lambda token: token["id"])
    for token in added:
        if token["id"] < len(order):
            if order[token["id"]][0] != token["content"]:
                raise ValueError(
                    f"Added token {token['content']!r} has the id of {order[token['id']][0]!r}."
                )
        elif token["id"] == len(pieces):
            pieces.append((token["content"], 0.0, CONTROL))
        else:
            raise ValueError(
                f"tokenizer.json's added token {token['content']!r} has id {token['id']}; "
                f"the next free id is {len(pieces)}."
            )
    special_ids = (3, 0, 2, 1)  # the trainer spec's unk, bos, eos, pad
    return serialized_model(pieces, BPE, normalizer_spec_of(tokenizer_json), special_ids)
