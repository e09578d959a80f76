"""The tokenizer that comes with a CLIP checkpoint, read from its files.

Layouts:
- a Hugging Face CLIP directory: `vocab.json` (token -> id) and
  `merges.txt`;
- OpenAI's `bpe_simple_vocab_16e6.txt.gz` (a file, or a directory holding it);
- a directory written by `keras_clip.Tokenizer.save`.

The vocabulary is rebuilt from the merges as OpenAI builds it, and a given
`vocab.json` must agree with it id for id: a mismatch is an error naming
the first differing token, never a silently shifted vocabulary.
"""

import json
import os

from keras_clip.clip_bpe import ClipBPETokenizer
from keras_clip.clip_bpe import read_merges
from keras_clip.tokenizer import CONFIG_FILE
from keras_clip.tokenizer import Tokenizer

OPENAI_MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
HF_VOCABULARY_FILE = "vocab.json"
HF_MERGES_FILE = "merges.txt"


def tokenizer_from_pretrained(path, context_length=77):
    """Reads a checkpoint's tokenizer (see the module docstring).

    Args:
        path: a directory or OpenAI's merges file.
        context_length: int, 77 for CLIP (ignored for a saved keras-clip
            tokenizer, which keeps its own).

    Returns:
        A `keras_clip.Tokenizer` (a `ClipBPETokenizer` for CLIP's files).

    Example:

    >>> tokenizer = tokenizer_from_pretrained("clip-vit-base-patch32/")
    >>> tokenizer(["a photo of a cat."]).shape  # (1, 77)
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return ClipBPETokenizer.from_merges_file(path, context_length)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No such file or folder: {path!r}.")
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return Tokenizer.load(path)
    if os.path.isfile(os.path.join(path, HF_MERGES_FILE)):
        return _from_huggingface(path, context_length)
    if os.path.isfile(os.path.join(path, OPENAI_MERGES_FILE)):
        return ClipBPETokenizer.from_merges_file(os.path.join(path, OPENAI_MERGES_FILE),
                                                 context_length)
    raise FileNotFoundError(
        f"{path!r} holds no tokenizer: expected {HF_VOCABULARY_FILE} + {HF_MERGES_FILE} "
        f"(Hugging Face), {OPENAI_MERGES_FILE} (OpenAI) or {CONFIG_FILE} (keras-clip).")


def _from_huggingface(path, context_length):
    merges = read_merges(os.path.join(path, HF_MERGES_FILE))
    tokenizer = ClipBPETokenizer(merges, context_length)
    vocabulary_path = os.path.join(path, HF_VOCABULARY_FILE)
    if os.path.isfile(vocabulary_path):
        with open(vocabulary_path, encoding="utf-8") as f:
            given = json.load(f)
        check_vocabulary(given, tokenizer.vocabulary, vocabulary_path)
    return tokenizer


def check_vocabulary(given, built, where):
    """Raises ValueError unless `given` (token -> id) equals `built` (list)."""
    if len(given) != len(built):
        raise ValueError(f"{where} has {len(given)} tokens, but its merges make a "
                         f"vocabulary of {len(built)}.")
    for index, token in enumerate(built):
        if given.get(token) != index:
            raise ValueError(
                f"{where}: token {token!r} has id {given.get(token)!r}, but the merges "
                f"give it id {index}; the files do not belong together.")
