"""The tokenizer as an OpenVINO graph, so that an OpenVINO export takes text.

`openvino_tokenizer(tokenizer)` builds, with openvino-tokenizers, a graph
from a batch of strings to the int32 token ids [N, context_length] that
`keras_clip.Tokenizer` gives (start, pieces, end, padding with id 0,
truncated keeping the end token). The graph is converted from a Hugging
Face fast tokenizer made from the tokenizer's own vocabulary:

- CLIP's byte-level BPE (`ClipBPETokenizer`): transformers'
  `CLIPTokenizerFast` on its vocabulary and merges;
- WordPiece (`WordPieceTokenizer`, the shipped demo models' and CLIPA's):
  `BertTokenizerFast` on its vocabulary, lower-casing and framing tokens.

What openvino-tokenizers cannot express is refused by name
(`openvino_tokenizer_support` says why): SentencePiece tokenizers (SigLIP,
XLM-R, mT5), and a tokenizer that cleans text with ftfy in Python first
(`python_clean`). On 1,600 ImageNet prompts and captions in a dozen
scripts the ids equal keras-clip's. Known differences, all rare in
captions: CLIP BPE: a caption holding the text "<|endoftext|>" (a special
token for keras-clip and open_clip), a single "word" longer than
`clip_bpe.MAX_WORD_CHARACTERS` characters (keras-clip splits it), and a
few letters that TensorFlow and Rust lower-case differently ("İ", "µ");
WordPiece: characters tensorflow-text's case folding expands ("ß" -> "ss",
ligatures, full-width letters) are unknown pieces in the graph, and a
control character inside a word splits it for tensorflow-text where BERT's
normaliser deletes it.

Example:

```python
import openvino
import openvino_tokenizers  # registers the graph's operations (needed to run it)

graph = openvino_tokenizer(tokenizer)            # an openvino.Model
openvino.save_model(graph, "clip_ov/tokenizer.xml")
openvino.Core().compile_model("clip_ov/tokenizer.xml")(["a photo of a cat."])[0]
```
"""

import json
import os
import tempfile

from keras_clip.utils import require

TOKENIZER_FILE = "tokenizer.xml"
OUTPUT_NAME = "token_ids"


def openvino_tokenizer_support(tokenizer):
    """None when `openvino_tokenizer` can convert `tokenizer`, else the
    reason it cannot (a sentence)."""
    kind = getattr(tokenizer, "type_name", type(tokenizer).__name__)
    if kind not in _HUGGING_FACE_TOKENIZERS:
        return (
            f"openvino-tokenizers cannot express keras-clip's {kind!r} tokenizer "
            f"(supported: {', '.join(sorted(_HUGGING_FACE_TOKENIZERS))})"
        )
    if getattr(tokenizer, "python_clean", False):
        return "the tokenizer cleans text with ftfy in Python first, which no graph can do"
    return None


def openvino_tokenizer(tokenizer):
    """An `openvino.Model`: strings [N] in, "token_ids" int32 [N, L] out,
    equal to `tokenizer(texts)`.

    Args:
        tokenizer: a `keras_clip.Tokenizer` (CLIP BPE or WordPiece).

    Returns:
        `openvino.Model`; running it needs `import openvino_tokenizers`.
    """
    reason = openvino_tokenizer_support(tokenizer)
    if reason:
        raise ValueError(f"The tokenizer cannot go into the OpenVINO graph: {reason}.")
    require(
        ("openvino", "openvino_tokenizers", "transformers"),
        "The tokenizer in the OpenVINO graph",
        extra="openvino",
    )
    import openvino
    from openvino import opset13 as ops
    from openvino_tokenizers import convert_tokenizer

    with tempfile.TemporaryDirectory() as scratch:
        fast = _HUGGING_FACE_TOKENIZERS[tokenizer.type_name](tokenizer, scratch)
    length = int(tokenizer.context_length)
    converted = convert_tokenizer(
        fast, max_length=length, truncation=True, use_max_padding=True, with_detokenizer=False
    )
    # Hugging Face pads with its own pad token; keras-clip with id 0.
    produced = {
        r.get_output_tensor(0).get_any_name(): r.input_value(0) for r in converted.get_results()
    }
    ids = ops.multiply(produced["input_ids"], produced["attention_mask"])
    if tokenizer.end_id == tokenizer.pad_id:  # open_clip's strip_sep_token
        end = tokenizer.vocabulary.index(tokenizer.framing["end_token"])
        ids = ops.select(
            ops.equal(ids, ops.constant(end, dtype="i64")), ops.constant(0, dtype="i64"), ids
        )
    token_ids = ops.convert(ids, "i32")
    token_ids.output(0).set_names({OUTPUT_NAME})
    # The converted graph keeps its settings in variables (ReadValue/Assign).
    return openvino.Model(
        [ops.result(token_ids)], converted.get_sinks(), converted.get_parameters(), "tokenizer"
    )


def _clip_bpe(tokenizer, scratch):
    from tokenizers import Regex
    from tokenizers import normalizers
    from transformers import CLIPTokenizerFast

    from keras_clip.tokenizers.clip_bpe import CONTROL_CHARACTERS

    with open(os.path.join(scratch, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(tokenizer.vocabulary)}, f)
    with open(os.path.join(scratch, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tokenizer.merges))
    fast = CLIPTokenizerFast.from_pretrained(scratch, model_max_length=tokenizer.context_length)
    # keras-clip first deletes the control characters ftfy deletes.
    backend = fast.backend_tokenizer
    backend.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(CONTROL_CHARACTERS), ""), backend.normalizer]
    )
    return fast


def _wordpiece(tokenizer, scratch):
    from transformers import BertTokenizerFast

    with open(os.path.join(scratch, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokenizer.vocabulary) + "\n")
    return BertTokenizerFast.from_pretrained(
        scratch,
        do_lower_case=tokenizer.lower_case,
        strip_accents=tokenizer.lower_case,  # tensorflow-text's lower_case_nfd_strip_accents
        cls_token=tokenizer.framing["start_token"],
        sep_token=tokenizer.framing["end_token"],
        unk_token="[UNK]",
        pad_token="[PAD]",
        model_max_length=tokenizer.context_length,
    )


# keras-clip tokenizer type -> a Hugging Face fast tokenizer made from it.
_HUGGING_FACE_TOKENIZERS = {"clip_bpe": _clip_bpe, "wordpiece": _wordpiece}
