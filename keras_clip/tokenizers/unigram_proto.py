"""SentencePiece Unigram models in XLM-RoBERTa's and T5's id order.

XLM-RoBERTa, XLM-V (MetaCLIP 2's 901,629-piece vocabulary) and the other
fairseq-trained tokenizers ship a SentencePiece Unigram model
(`sentencepiece.bpe.model`, despite its name) whose ids are not the model's:
fairseq's dictionary puts "<s>", "<pad>", "</s>", "<unk>" at 0-3, shifts
every other piece up by one and appends "<mask>". transformers 5 saves the
same tokenizer as a `tokenizer.json` alone (a Unigram vocabulary already in
that order, with the SentencePiece normaliser's precompiled character map).

T5's and mT5's `spiece.model` (MetaCLIP 2's ViT-L-14 tokenizer) keeps its
ids, and transformers appends `extra_ids` sentinels ("<extra_id_99>" first,
"<extra_id_0>" last) after them.

Each becomes one SentencePiece model proto whose piece order is the
checkpoint's id order, so tensorflow-text's SentencePiece op gives
transformers' ids directly, with no id remapping in the graph.
`tests/test_unigram_tokenizers.py` checks the ids against transformers'
`XLMRobertaTokenizer` and open_clip's `HFTokenizer`.

Example:

```python
with open("metaclip-2/sentencepiece.bpe.model", "rb") as f:
    model = fairseq_ordered_model(f.read())
keras_clip.tokenizers.SentencePieceTokenizer(
    model, context_length=77, cleaning=(), start_piece="<s>", pad_piece="<pad>")
```
"""

import base64

from keras_clip.tokenizers.sentencepiece_proto import CONTROL
from keras_clip.tokenizers.sentencepiece_proto import NORMAL
from keras_clip.tokenizers.sentencepiece_proto import UNIGRAM
from keras_clip.tokenizers.sentencepiece_proto import UNKNOWN
from keras_clip.tokenizers.sentencepiece_proto import USER_DEFINED
from keras_clip.tokenizers.sentencepiece_proto import normalizer_spec
from keras_clip.tokenizers.sentencepiece_proto import parsed_model
from keras_clip.tokenizers.sentencepiece_proto import serialized_model

# fairseq's dictionary: these four first, then the SentencePiece pieces
# after its own <unk>, <s>, </s>, then "<mask>".
FAIRSEQ_SPECIALS = (("<s>", CONTROL), ("<pad>", CONTROL), ("</s>", CONTROL), ("<unk>", UNKNOWN))
MASK_PIECE = "<mask>"
_SPACE = "\u2581"


def _model(pieces, normalizer):
    """ModelProto bytes of a Unigram model: `pieces` [(piece, score, type)]
    in id order; the trainer spec names its "<unk>", "<s>", "</s>", "<pad>"."""
    ids = {piece: i for i, (piece, _, kind) in enumerate(pieces) if kind in (CONTROL, UNKNOWN)}
    special_ids = tuple(ids.get(piece, -1) for piece in ("<unk>", "<s>", "</s>", "<pad>"))
    return serialized_model(pieces, UNIGRAM, normalizer, special_ids)


def _unigram_pieces(model):
    """(pieces, normalizer_spec bytes) of a serialized Unigram model."""
    pieces, model_type, normalizer = parsed_model(model)
    if model_type != UNIGRAM:
        raise ValueError("The SentencePiece model is not a Unigram model.")
    return pieces, normalizer


def fairseq_ordered_model(model):
    """A fairseq-trained SentencePiece Unigram model (XLM-R's, XLM-V's
    `sentencepiece.bpe.model`) rewritten in the checkpoint's id order.

    Args:
        model: bytes, the serialized SentencePiece model.

    Returns:
        bytes of a model whose piece i is transformers' id i.
    """
    pieces, normalizer = _unigram_pieces(model)
    expected = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
    if [(piece, kind) for piece, _, kind in pieces[:3]] != expected:
        raise ValueError(
            "sentencepiece.bpe.model does not start with <unk>, <s>, </s> as fairseq's "
            f"models do (it starts {[p for p, _, _ in pieces[:3]]}): its ids are unknown."
        )
    specials = [(piece, 0.0, kind) for piece, kind in FAIRSEQ_SPECIALS]
    ordered = specials + pieces[3:] + [(MASK_PIECE, 0.0, CONTROL)]
    return _model(ordered, normalizer)


def with_sentinels(model, extra_ids=100):
    """A T5 `spiece.model` with transformers' `extra_ids` sentinel pieces
    appended ("<extra_id_{extra_ids - 1}>" first), as `T5Tokenizer` numbers
    them; control pieces, matched in a caption as transformers does."""
    pieces, normalizer = _unigram_pieces(model)
    sentinels = [(f"<extra_id_{i}>", 0.0, CONTROL) for i in reversed(range(extra_ids))]
    return _model(pieces + sentinels, normalizer)


def normalizer_spec_of(tokenizer_json):
    """The SentencePiece normaliser a Unigram tokenizer.json describes:
    the precompiled character map, a "▁" prefix, whitespace runs collapsed."""
    normalizer = tokenizer_json.get("normalizer") or {}
    charsmap = b""
    for step in normalizer.get("normalizers", [normalizer] if normalizer else []):
        if step.get("type") == "Precompiled":
            charsmap = base64.b64decode(step.get("precompiled_charsmap") or "")
        elif not (
            step.get("type") == "Replace"
            and step.get("pattern") == {"Regex": " {2,}"}
            and step.get("content") == " "
        ):
            raise ValueError(f"tokenizer.json's normalizer step {step} is not supported.")
    splitter = tokenizer_json.get("pre_tokenizer") or {}
    for step in splitter.get("pretokenizers", [splitter] if splitter else []):
        metaspace = step.get("type") == "Metaspace" and step.get("replacement") == _SPACE
        prefix = step.get("prepend_scheme", "always" if step.get("add_prefix_space") else "never")
        if not (step.get("type") == "WhitespaceSplit" or metaspace and prefix == "always"):
            raise ValueError(f"tokenizer.json's pre-tokenizer step {step} is not supported.")
    return normalizer_spec("nmt_nfkc" if charsmap else "identity", charsmap)


def unigram_model_from_tokenizer_json(tokenizer_json):
    """Serialized SentencePiece `ModelProto` bytes equivalent to a Unigram
    `tokenizer.json` (a parsed dict, e.g. XLM-RoBERTa's as transformers 5
    saves it), in its own id order.

    Args:
        tokenizer_json: dict, the parsed `tokenizer.json`.

    Returns:
        bytes for `SentencePieceTokenizer(model=...)`.
    """
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise ValueError(
            "Only a Unigram tokenizer.json without byte fallback converts here; this one "
            f"has model type {model.get('type')!r}."
        )
    vocabulary = model["vocab"]
    unknown = model.get("unk_id")
    if unknown is None:
        raise ValueError("tokenizer.json's Unigram model has no unk_id.")
    added = {token["id"]: token for token in tokenizer_json.get("added_tokens", [])}
    pieces = []
    for index, (piece, score) in enumerate(vocabulary):
        kind = NORMAL
        if index in added:
            if added[index]["content"] != piece:
                raise ValueError(
                    f"Added token {added[index]['content']!r} has the id of {piece!r}."
                )
            kind = CONTROL if added[index].get("special") else USER_DEFINED
        if index == unknown:
            kind = UNKNOWN
        pieces.append((piece, score, kind))
    beyond = sorted(i for i in added if i >= len(vocabulary))
    if beyond:
        raise ValueError(f"tokenizer.json adds tokens beyond its vocabulary (ids {beyond[:5]}).")
    return _model(pieces, normalizer_spec_of(tokenizer_json))
