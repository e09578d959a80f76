"""Where tokenizers keep their files: the layouts `Tokenizer.load` and
`Tokenizer.from_pretrained` read, and the checks between the files.

Layouts:
- a directory written by `Tokenizer.save`: `tokenizer.json` naming the
  tokenizer type, plus that type's files;
- a Hugging Face CLIP directory: `vocab.json` (token -> id) and `merges.txt`;
- a Hugging Face SigLIP directory: `spiece.model` (SentencePiece) and
  `tokenizer_config.json` (`model_max_length`, `do_lower_case`);
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


def read_saved_config(path):
    """The settings `Tokenizer.save` wrote to the directory `path`."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"No {CONFIG_FILE} in {path!r}: not a saved Tokenizer.")
    with open(config_path, encoding="utf-8") as f:
        return json.load(f)


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
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return {"layout": "saved", "type": read_saved_config(path).get("type"), "directory": path}
    if os.path.isfile(os.path.join(path, HF_MERGES_FILE)):
        vocabulary = os.path.join(path, HF_VOCABULARY_FILE)
        return {
            "layout": "huggingface",
            "type": "clip_bpe",
            "merges": os.path.join(path, HF_MERGES_FILE),
            "vocabulary": vocabulary if os.path.isfile(vocabulary) else None,
        }
    if os.path.isfile(os.path.join(path, SENTENCEPIECE_FILE)):
        settings_path = os.path.join(path, HF_TOKENIZER_CONFIG_FILE)
        settings = {}
        if os.path.isfile(settings_path):
            with open(settings_path, encoding="utf-8") as f:
                settings = json.load(f)
        return {
            "layout": "huggingface",
            "type": "sentencepiece",
            "model": os.path.join(path, SENTENCEPIECE_FILE),
            "settings": settings,
        }
    if os.path.isfile(os.path.join(path, OPENAI_MERGES_FILE)):
        return {
            "layout": "openai",
            "type": "clip_bpe",
            "merges": os.path.join(path, OPENAI_MERGES_FILE),
            "vocabulary": None,
        }
    raise FileNotFoundError(
        f"{path!r} holds no tokenizer: expected {HF_VOCABULARY_FILE} + {HF_MERGES_FILE} "
        f"(Hugging Face CLIP), {SENTENCEPIECE_FILE} (SigLIP), {OPENAI_MERGES_FILE} (OpenAI) "
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
