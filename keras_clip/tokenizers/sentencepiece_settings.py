"""How a Hugging Face or open_clip directory frames SentencePiece ids.

SigLIP's `SiglipTokenizer` canonicalises the text and ends it with "</s>",
which also pads; SigLIP 2 ships Gemma's tokenizer (`tokenizer.model`, BPE
with byte fallback) under `GemmaTokenizer` or `Siglip2Tokenizer` (the latter
lower-cases), whose start and end tokens and padding side are settings of
the checkpoint; MetaCLIP 2 ships XLM-V under `XLMRobertaTokenizer` ("<s>"
starts, "</s>" ends, "<pad>" pads after) and, for ViT-L-14, mT5's
`T5Tokenizer` ("</s>" ends, "<pad>" pads after); NLLB-CLIP ships
`NllbTokenizer` (its `src_lang` code starts, "</s>" ends, "<pad>" pads
after). This module reads them, as transformers does, from
`tokenizer_config.json` (`add_bos_token`, `add_eos_token`, `padding_side`,
the special tokens, `model_max_length`), from `tokenizer.json` (its
post-processor template and normaliser, which transformers 5 writes instead
of the `add_*` flags) and from the class defaults of transformers 5; an
open_clip directory adds open_clip's own clean-up (`tokenizer_kwargs`).

Cleaning steps, applied in order (see `SentencePieceTokenizer`):
"underscores" (to spaces, open_clip's canonicalise), "lower",
"punctuation" (ASCII punctuation removed) and "whitespace" (runs collapsed
to one space, stripped).

Example:

```python
settings = sentencepiece_settings({"settings": {"tokenizer_class": "Siglip2Tokenizer"}})
settings["cleaning"]  # ["lower"]
```
"""

from keras_clip.tokenizers.loading import OPEN_CLIP_CONTEXT_LENGTH
from keras_clip.tokenizers.loading import hf_tokenizer_class
from keras_clip.tokenizers.loading import token_text

# transformers 5's defaults for each class: (cleaning, start, end, pad, side).
_CLASSES = {
    "SiglipTokenizer": (["lower", "punctuation", "whitespace"], None, "</s>", "</s>", "right"),
    "GemmaTokenizer": ([], None, None, "<pad>", "left"),
    "Siglip2Tokenizer": (["lower"], None, None, "<pad>", "left"),
    "XLMRobertaTokenizer": ([], "<s>", "</s>", "<pad>", "right"),
    "T5Tokenizer": ([], None, "</s>", "<pad>", "right"),
    # NLLB: the source language's code starts each caption (`_nllb_language`).
    "NllbTokenizer": ([], "eng_Latn", "</s>", "<pad>", "right"),
}
# Which class a directory without tokenizer_class holds, by its files.
_DEFAULT_CLASS = {
    "siglip": "SiglipTokenizer",
    "gemma": "GemmaTokenizer",
    "fairseq": "XLMRobertaTokenizer",
    "unigram": "XLMRobertaTokenizer",
}
# open_clip's `HFTokenizer(clean=...)`, run before the class's own steps.
_OPEN_CLIP_CLEANING = {
    "canonicalize": ["underscores", "punctuation", "lower", "whitespace"],
    "lower": ["whitespace", "lower"],
    "whitespace": ["whitespace"],
}
# transformers' "no limit" model_max_length (1e30) and anything near it.
_UNLIMITED = 1_000_000


def _template_framing(tokenizer_json):
    """(start, end) pieces of tokenizer.json's single-sequence template."""
    processor = (tokenizer_json or {}).get("post_processor") or {}
    if processor.get("type") != "TemplateProcessing":
        return None
    parts = [next(iter(item.items())) for item in processor["single"]]
    kinds = [kind for kind, _ in parts]
    if kinds.count("Sequence") != 1 or len(parts) > 3:
        raise ValueError(f"tokenizer.json's post-processor template {parts} is not supported.")
    at = kinds.index("Sequence")
    specials = [value["id"] for _, value in parts]
    start = specials[0] if at == 1 else None
    end = specials[at + 1] if at + 1 < len(parts) else None
    return start, end


def _flagged_piece(settings, name, piece):
    """`piece`, unless tokenizer_config's `add_{name}_token` says otherwise
    (then its `{name}_token`, or None)."""
    flag = settings.get(f"add_{name}_token")
    if flag is None:
        return piece
    return token_text(settings.get(f"{name}_token", f"<{name}>")) if flag else None


def _lower_cases(tokenizer_json):
    normalizer = (tokenizer_json or {}).get("normalizer") or {}
    steps = normalizer.get("normalizers", [normalizer])
    return any(step.get("type") == "Lowercase" for step in steps)


def _nllb_language(settings, open_clip):
    """The language code NLLB starts captions with: open_clip's
    `tokenizer_kwargs.language`, else the checkpoint's `src_lang`."""
    if settings.get("legacy_behaviour"):
        raise ValueError(
            "NLLB's legacy_behaviour (the language code after </s>) is not supported: "
            "save the tokenizer with legacy_behaviour=False."
        )
    kwargs = open_clip.get("tokenizer_kwargs") or {}
    return kwargs.get("language") or settings.get("src_lang") or "eng_Latn"


def tokenizer_class(files):
    """The transformers class a directory's SentencePiece tokenizer is
    (tokenizer_config.json's, else the one its files imply), without "Fast"."""
    settings = files.get("settings", {})
    name = hf_tokenizer_class(settings) or _DEFAULT_CLASS[files.get("kind", "siglip")]
    if name not in _CLASSES:
        raise ValueError(
            f"tokenizer_class {name!r} is not a SentencePiece tokenizer keras-clip reads; "
            f"known: {sorted(_CLASSES)}."
        )
    return name


def sentencepiece_settings(files):
    """Constructor settings of `SentencePieceTokenizer` for a directory.

    Args:
        files: dict from `locate_pretrained_files`: "settings" (the
            tokenizer_config.json), optionally "tokenizer_json" (the parsed
            tokenizer.json), "model_config" (config.json) and "open_clip"
            (open_clip_config.json's text_cfg).

    Returns:
        dict with "context_length", "cleaning", "start_piece", "end_piece",
        "pad_piece" and "padding_side".
    """
    settings = files.get("settings", {})
    name = tokenizer_class(files)
    cleaning, start, end, pad, side = _CLASSES[name]
    cleaning = list(cleaning)
    if name == "SiglipTokenizer":
        if not settings.get("do_lower_case", True):
            cleaning.remove("lower")
        end = token_text(settings.get("eos_token", end))
    else:
        template = _template_framing(files.get("tokenizer_json"))
        if template is not None:
            start, end = template
        start = _flagged_piece(settings, "bos", start)
        end = _flagged_piece(settings, "eos", end)
        if _lower_cases(files.get("tokenizer_json")) and "lower" not in cleaning:
            cleaning.append("lower")
    pad = token_text(settings.get("pad_token", pad))
    open_clip = files.get("open_clip") or {}
    if name == "NllbTokenizer":
        start = _nllb_language(settings, open_clip)
    # open_clip's HFTokenizer cleans whitespace unless its config says otherwise.
    default_clean = "whitespace" if files.get("open_clip") is not None else None
    clean = (open_clip.get("tokenizer_kwargs") or {}).get("clean", default_clean)
    if clean is not None:
        if clean not in _OPEN_CLIP_CLEANING:
            raise ValueError(f"open_clip tokenizer_kwargs clean={clean!r} is not supported.")
        cleaning = _OPEN_CLIP_CLEANING[clean] + cleaning
    # open_clip passes its text_cfg's context length (default 77) to the tokenizer.
    if files.get("open_clip") is not None:
        length = open_clip.get("context_length", OPEN_CLIP_CONTEXT_LENGTH)
    else:
        length = settings.get("model_max_length")
    positions = ((files.get("model_config") or {}).get("text_config") or {}).get(
        "max_position_embeddings"
    )
    if length is None or length >= _UNLIMITED:
        length = positions or 64
    elif positions:  # a shared tokenizer's limit (XLM-V's 512) past the model's positions
        length = min(length, positions)
    return {
        "context_length": int(length),
        "cleaning": cleaning,
        "start_piece": start,
        "end_piece": end,
        "pad_piece": pad,
        "padding_side": settings.get("padding_side", side),
    }
