"""Where tokenizers keep their files: the layouts `Tokenizer.load` and
`Tokenizer.from_pretrained` read, and the checks between the files.

Layouts:
- a directory written by `Tokenizer.save`: `tokenizer.json` naming the
  tokenizer type, plus that type's files;
- a Hugging Face CLIP directory: `vocab.json` (token -> id) and `merges.txt`;
- a Hugging Face RoBERTa directory (GPT-2's byte-level BPE): the same two
  files, told apart by `tokenizer_config.json`'s class or `config.json`'s
  model type;
- a Hugging Face SigLIP directory: `spiece.model` (SentencePiece) and
  `tokenizer_config.json` (`model_max_length`, `do_lower_case`);
- a Hugging Face SigLIP 2 directory: Gemma's `tokenizer.model`, with
  `tokenizer_config.json` and `tokenizer.json` (framing, lower-casing), or
  that `tokenizer.json` alone (a byte-fallback BPE, as transformers 5 saves);
- a Hugging Face XLM-RoBERTa tokenizer (MetaCLIP 2's XLM-V):
  `sentencepiece.bpe.model` (a fairseq-ordered Unigram model), or a Unigram
  `tokenizer.json` alone (as transformers 5 saves it);
- NLLB's tokenizer (NLLB-CLIP): its `tokenizer.json` (a SentencePiece BPE
  vocabulary, language codes added) with `tokenizer_config.json` naming
  `NllbTokenizer` (and `src_lang`);
- a Hugging Face BERT tokenizer (CLIPA's `bert-base-uncased`): `vocab.txt`,
  or a WordPiece `tokenizer.json` (as transformers 5 saves it), with
  `tokenizer_config.json` (`do_lower_case`, the special tokens);
- an open_clip directory holding one of those, with `open_clip_config.json`
  (the context length and open_clip's clean-up, `strip_sep_token`);
- OpenAI's `bpe_simple_vocab_16e6.txt.gz` (a file, or a directory holding it).

Nothing here builds a tokenizer (that is the types' job), so the base class
can read a layout without importing any of its subclasses.
"""

import json
import os

CONFIG_FILE = "tokenizer.json"
OPENAI_MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
HF_VOCABULARY_FILE = "vocab.json"
HF_MERGES_FILE = "merges.txt"
HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SENTENCEPIECE_FILE = "spiece.model"
GEMMA_FILE = "tokenizer.model"
FAIRSEQ_FILE = "sentencepiece.bpe.model"
BERT_VOCABULARY_FILE = "vocab.txt"
NLLB_CLASS = "NllbTokenizer"
# GPT-2-style byte-level BPE tokenizers, whose files look like CLIP's.
BYTE_LEVEL_CLASSES = ("RobertaTokenizer", "GPT2Tokenizer", "BartTokenizer")
BYTE_LEVEL_MODEL_TYPES = ("roberta", "gpt2", "bart")
# open_clip's DEFAULT_CONTEXT_LENGTH, for a text_cfg without context_length.
OPEN_CLIP_CONTEXT_LENGTH = 77
MODEL_CONFIG_FILES = {"model_config": "config.json", "open_clip": "open_clip_config.json"}


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def token_text(token):
    """A special token as tokenizer_config.json gives it: a str, or an
    AddedToken dict with its "content"."""
    return token.get("content") if isinstance(token, dict) else token


def hf_tokenizer_class(settings):
    """tokenizer_config.json's `tokenizer_class` without "Fast" ("" if none)."""
    return (settings.get("tokenizer_class") or "").removesuffix("Fast")


def _is_huggingface_tokenizer_json(config):
    """Hugging Face's tokenizer.json (a `tokenizers` pipeline) shares the
    name of keras-clip's tokenizer config; it holds a "model" section."""
    return isinstance(config, dict) and isinstance(config.get("model"), dict)


def _sentencepiece_files(path, tokenizer_json):
    """The SentencePiece layout of the directory `path`, or None;
    `tokenizer_json` is its parsed Hugging Face tokenizer.json, or None.

    "kind" says how its ids are laid out: "siglip" (`spiece.model`'s own),
    "gemma" (`tokenizer.model`, or a byte-fallback BPE tokenizer.json) or
    "fairseq" (`sentencepiece.bpe.model`, to be reordered), "unigram" (a
    Unigram tokenizer.json, already in its ids' order) or "nllb" (NLLB's
    BPE tokenizer.json with its language codes)."""
    models = [
        name
        for name in (SENTENCEPIECE_FILE, GEMMA_FILE, FAIRSEQ_FILE)
        if os.path.isfile(os.path.join(path, name))
    ]
    json_model = (tokenizer_json or {}).get("model", {})
    configs = _settings_and_model_configs(path)
    if hf_tokenizer_class(configs["settings"]) == NLLB_CLASS:
        if json_model.get("type") != "BPE":
            raise ValueError(
                f"{path!r}: NLLB's tokenizer is read from its tokenizer.json (the language "
                "codes' ids are there); this directory has none."
            )
        kind = "nllb"
        models = []  # the tokenizer.json describes the whole model
    elif models:
        kind = {SENTENCEPIECE_FILE: "siglip", GEMMA_FILE: "gemma", FAIRSEQ_FILE: "fairseq"}
        kind = kind[models[0]]
    elif json_model.get("byte_fallback", False):
        kind = "gemma"  # transformers 5's Gemma: a byte-fallback BPE tokenizer.json
    elif json_model.get("type") == "Unigram":
        kind = "unigram"  # transformers 5's XLM-RoBERTa or T5: a Unigram tokenizer.json
    else:
        return None
    files = {
        "layout": "huggingface",
        "type": "sentencepiece",
        # None: the tokenizer.json alone describes the model.
        "model": os.path.join(path, models[0]) if models else None,
        "kind": kind,
        "tokenizer_json": tokenizer_json,
    }
    return {**files, **configs}


def _settings_and_model_configs(path):
    """A Hugging Face directory's tokenizer_config.json ("settings"), its
    model config.json and open_clip's text_cfg ("open_clip"), each {} or
    None where absent."""
    files = {"settings": _read_json(os.path.join(path, HF_TOKENIZER_CONFIG_FILE)) or {}}
    for key, name in MODEL_CONFIG_FILES.items():
        files[key] = _read_json(os.path.join(path, name))
    if files["open_clip"] is not None:
        files["open_clip"] = files["open_clip"].get("model_cfg", {}).get("text_cfg", {})
    return files


def _bert_files(path, tokenizer_json):
    """The BERT WordPiece layout of the directory `path`, or None."""
    vocabulary = os.path.join(path, BERT_VOCABULARY_FILE)
    json_model = (tokenizer_json or {}).get("model", {})
    if not os.path.isfile(vocabulary) and json_model.get("type") != "WordPiece":
        return None
    return {
        "layout": "huggingface",
        "type": "wordpiece",
        "vocabulary": vocabulary if os.path.isfile(vocabulary) else None,
        "tokenizer_json": tokenizer_json,
        **_settings_and_model_configs(path),
    }


def _byte_level_bpe_files(path):
    """The GPT-2 byte-level BPE layout (RoBERTa's) of the directory `path`,
    or None: vocab.json + merges.txt are CLIP's files too, so the two are told
    apart by tokenizer_config.json's class or config.json's model type."""
    files = _settings_and_model_configs(path)
    model_type = (files["model_config"] or {}).get("model_type")
    name = hf_tokenizer_class(files["settings"])
    if name not in BYTE_LEVEL_CLASSES and model_type not in BYTE_LEVEL_MODEL_TYPES:
        return None
    if not os.path.isfile(os.path.join(path, HF_VOCABULARY_FILE)):
        raise ValueError(f"{path!r}: a byte-level BPE tokenizer needs its {HF_VOCABULARY_FILE}.")
    return {
        "layout": "huggingface",
        "type": "byte_level_bpe",
        "merges": os.path.join(path, HF_MERGES_FILE),
        "vocabulary": os.path.join(path, HF_VOCABULARY_FILE),
        **files,
    }


def read_saved_config(path):
    """The settings `Tokenizer.save` wrote to the directory `path`."""
    config = _read_json(os.path.join(path, CONFIG_FILE))
    if config is None or _is_huggingface_tokenizer_json(config):
        raise FileNotFoundError(
            f"No keras-clip {CONFIG_FILE} in {path!r}: not a saved Tokenizer "
            "(Tokenizer.from_pretrained reads checkpoints' tokenizers)."
        )
    return config


def locate_pretrained_files(path):
    """Which layout `path` holds, and its files.

    Args:
        path: a directory or OpenAI's merges file.

    Returns:
        dict with "layout" ("saved", "huggingface" or "openai"), "type" (the
        tokenizer type that reads it: "clip_bpe", or the saved one) and the
        paths: "directory", or "merges" and "vocabulary" (None if absent).

    Example:

    ```python
    locate_pretrained_files("clip-vit-base-patch32/")["layout"]  # "huggingface"
    ```
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return {"layout": "openai", "type": "clip_bpe", "merges": path, "vocabulary": None}
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No such file or folder: {path!r}.")
    # keras-clip's saved config and Hugging Face's tokenizer.json share a name.
    tokenizer_json = _read_json(os.path.join(path, CONFIG_FILE))
    if tokenizer_json is not None and not _is_huggingface_tokenizer_json(tokenizer_json):
        return {"layout": "saved", "type": tokenizer_json.get("type"), "directory": path}
    if os.path.isfile(os.path.join(path, HF_MERGES_FILE)):
        byte_level = _byte_level_bpe_files(path)  # GPT-2's (RoBERTa's), not CLIP's
        if byte_level is not None:
            return byte_level
        vocabulary = os.path.join(path, HF_VOCABULARY_FILE)
        return {
            "layout": "huggingface",
            "type": "clip_bpe",
            "merges": os.path.join(path, HF_MERGES_FILE),
            "vocabulary": vocabulary if os.path.isfile(vocabulary) else None,
        }
    found = _sentencepiece_files(path, tokenizer_json) or _bert_files(path, tokenizer_json)
    if found is not None:
        return found
    if os.path.isfile(os.path.join(path, OPENAI_MERGES_FILE)):
        return {
            "layout": "openai",
            "type": "clip_bpe",
            "merges": os.path.join(path, OPENAI_MERGES_FILE),
            "vocabulary": None,
        }
    raise FileNotFoundError(
        f"{path!r} holds no tokenizer: expected {HF_VOCABULARY_FILE} + {HF_MERGES_FILE} "
        f"(Hugging Face CLIP), {SENTENCEPIECE_FILE} (SigLIP), {GEMMA_FILE} (SigLIP 2), "
        f"{BERT_VOCABULARY_FILE} (BERT), "
        f"{OPENAI_MERGES_FILE} (OpenAI) "
        f"or {CONFIG_FILE} (keras-clip)."
    )


def check_vocabulary(vocabulary_path, built):
    """Raises ValueError unless the token -> id map in `vocabulary_path`
    equals `built` (a list of tokens in id order), naming the first
    difference: never a silently shifted vocabulary."""
    with open(vocabulary_path, encoding="utf-8") as f:
        given = json.load(f)
    if len(given) != len(built):
        raise ValueError(
            f"{vocabulary_path} has {len(given)} tokens, but its merges make "
            f"a vocabulary of {len(built)}."
        )
    for index, token in enumerate(built):
        if given.get(token) != index:
            raise ValueError(
                f"{vocabulary_path}: token {token!r} has id {given.get(token)!r}, but the "
                f"merges give it id {index}; the files do not belong together."
            )
