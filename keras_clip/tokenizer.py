"""A WordPiece caption tokenizer built on tensorflow-text ops.

Everything it does is a TensorFlow op (`FastBertTokenizer`, ragged slicing,
padding), so it runs inside `tf.data` and inside an exported SavedModel.
This module imports TensorFlow; the model code does not.
"""

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
CONFIG_FILE = "tokenizer.json"
_VOCABULARY_FILE = "vocabulary.txt"


class Tokenizer:
    """Lower-cases, splits words into WordPieces, adds start/end, pads.

    Ids: 0 is padding, 1 unknown, and the two largest ids are start- and
    end-of-text, so (as with OpenAI's tokenizer) the end token is the
    largest id and `TextTransformer(end_token_id=None)` pools at it.
    Captions longer than `context_length` are truncated so that the end
    token is always kept.

    Args:
        vocabulary: list of str. WordPieces ("##" marks a continuation),
            containing "[PAD]" (first), "[UNK]", "[START]" and "[END]".
        context_length: int. Tokens per caption, start and end included.
        lower_case: bool. Lower-case, NFD-normalise and strip accents.

    Call arguments:
        texts: str, list of str, NumPy array or `tf.Tensor` of strings.

    Returns:
        int32 (batch, context_length): a NumPy array for Python/NumPy input,
        a `tf.Tensor` for tensor input (also inside tf.data or a
        `tf.function`). A scalar string gives (context_length,).

    Raises:
        ValueError: for empty or whitespace-only Python strings. (Tensor
            input is not checked: an empty string becomes [START, END].)

    Example:

    >>> tokenizer = Tokenizer.from_corpus(captions, vocabulary_size=1000,
    ...                                   context_length=32)
    >>> tokenizer(["a red circle", "a blue square"]).shape  # (2, 32)
    """

    def __init__(self, vocabulary, context_length=77, lower_case=True):
        vocabulary = [str(token) for token in vocabulary]
        missing = [t for t in (PAD, UNK, START, END) if t not in vocabulary]
        if missing:
            raise ValueError(f"The vocabulary lacks the special tokens {missing}.")
        if vocabulary[0] != PAD:
            raise ValueError(f"The vocabulary must start with {PAD} (id 0).")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate entries.")
        if not isinstance(context_length, int) or context_length < 3:
            raise ValueError(
                f"context_length must be an integer >= 3, got {context_length!r}."
            )
        self.vocabulary = vocabulary
        self.context_length = context_length
        self.lower_case = lower_case
        self.pad_id = 0
        self.unknown_id = vocabulary.index(UNK)
        self.start_id = vocabulary.index(START)
        self.end_id = vocabulary.index(END)
        self._wordpiece = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            token_out_type=tf.int32,
            unknown_token=UNK,
            lower_case_nfd_strip_accents=lower_case,
        )

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    @property
    def end_token_id(self):
        return self.end_id

    @classmethod
    def from_corpus(cls, texts, vocabulary_size, context_length=77,
                    lower_case=True):
        """Learns a WordPiece vocabulary of at most `vocabulary_size` entries.

        Args:
            texts: iterable of str (or a `tf.data.Dataset` of strings).
            vocabulary_size: int. Upper bound on the vocabulary, special
                tokens included.
            context_length: int.
            lower_case: bool.
        """
        if vocabulary_size < 8:
            raise ValueError(
                f"vocabulary_size must be at least 8, got {vocabulary_size}."
            )
        if isinstance(texts, tf.data.Dataset):
            dataset = texts
        else:
            texts = [str(t) for t in texts if str(t).strip()]
            if not texts:
                raise ValueError("from_corpus needs at least one non-empty text.")
            dataset = tf.data.Dataset.from_tensor_slices(texts)
        learned = bert_vocab_from_dataset.bert_vocab_from_dataset(
            dataset.batch(1024),
            vocab_size=vocabulary_size - 2,
            reserved_tokens=[PAD, UNK],
            bert_tokenizer_params={"lower_case": lower_case},
        )
        return cls(learned + [START, END], context_length, lower_case)

    @classmethod
    def from_clip_bpe(cls, path, context_length=77, num_merges=None):
        """CLIP's byte-level BPE from OpenAI's merges file (see `ClipBPETokenizer`).

        Args:
            path: the merges file, e.g. `bpe_simple_vocab_16e6.txt.gz`
                (gzipped or plain text).
            context_length: int, 77 as in CLIP.
            num_merges: int, how many merges to use; default all, but at
                most 48,894 (the number CLIP uses from OpenAI's file).
        """
        from keras_clip.clip_bpe import ClipBPETokenizer

        return ClipBPETokenizer.from_merges_file(path, context_length, num_merges)

    @classmethod
    def from_pretrained(cls, path, context_length=77):
        """The tokenizer of a CLIP checkpoint: a Hugging Face directory
        (vocab.json + merges.txt), OpenAI's `bpe_simple_vocab_16e6.txt.gz`, or
        a directory written by `save` (see `keras_clip.pretrained_tokenizer`).
        """
        from keras_clip.pretrained_tokenizer import tokenizer_from_pretrained

        return tokenizer_from_pretrained(path, context_length)

    def tf_resources(self):
        """The TensorFlow resources an exported SavedModel must track."""
        return [self._wordpiece]

    def _token_ids(self, texts):
        """1-D string tensor -> int32 ragged (batch, None) ids, no start/end."""
        pieces = self._wordpiece.tokenize(texts)
        if isinstance(pieces, tf.RaggedTensor) and pieces.ragged_rank > 1:
            pieces = pieces.merge_dims(1, -1)
        return pieces

    def tokenize(self, texts):
        """Tensor in, tensor out: (..., context_length) int32."""
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        scalar = texts.shape.rank == 0
        texts = tf.reshape(texts, [-1])
        pieces = self._token_ids(texts)[:, : self.context_length - 2]
        batch = tf.shape(texts)[0]
        start = tf.fill([batch, 1], self.start_id)
        end = tf.fill([batch, 1], self.end_id)
        ids = tf.concat([start, tf.cast(pieces, tf.int32), end], axis=1)
        ids = ids.to_tensor(self.pad_id, shape=[None, self.context_length])
        return ids[0] if scalar else ids

    def __call__(self, texts):
        if isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
            return self.tokenize(texts)
        array = np.asarray(texts, dtype=object)
        flat = array.reshape(-1)
        empty = [i for i, t in enumerate(flat) if not str(t).strip()]
        if empty:
            raise ValueError(
                f"Empty or whitespace-only caption(s) at index {empty[:10]}; "
                "every caption needs at least one word."
            )
        # Undecodable bytes (e.g. from argv, as surrogates) pass through as
        # bytes, tokenised without error like non-UTF-8 tensor input.
        encoded = [t if isinstance(t, bytes) else str(t).encode("utf-8", "surrogateescape")
                   for t in flat]
        ids = self.tokenize(tf.constant(encoded)).numpy()
        return ids[0] if array.ndim == 0 else ids

    def detokenize(self, token_ids):
        """Maps ids back to space-separated WordPieces (for inspection)."""
        table = np.array(self.vocabulary, dtype=object)
        rows = []
        for row in np.atleast_2d(np.asarray(token_ids)):
            row = [i for i in row if i not in (self.pad_id, self.start_id, self.end_id)]
            rows.append(" ".join(table[row]).replace(" ##", ""))
        return rows

    def save(self, path):
        """Writes the vocabulary and settings to the directory `path`."""
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, _VOCABULARY_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(self.vocabulary) + "\n")
        with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump({"type": "wordpiece", "context_length": self.context_length,
                       "lower_case": self.lower_case}, f, indent=2)

    @classmethod
    def load(cls, path):
        """Reads a tokenizer written by `save` (WordPiece or CLIP BPE)."""
        config_path = os.path.join(path, CONFIG_FILE)
        if not os.path.exists(config_path):
            raise FileNotFoundError(f"No {CONFIG_FILE} in {path!r}: not a saved Tokenizer.")
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        if config.get("type") == "clip_bpe":
            from keras_clip.clip_bpe import ClipBPETokenizer

            return ClipBPETokenizer.load_directory(path, config)
        with open(os.path.join(path, _VOCABULARY_FILE), encoding="utf-8") as f:
            vocabulary = f.read().splitlines()
        return cls(vocabulary, config["context_length"], config["lower_case"])
