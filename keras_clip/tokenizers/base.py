"""The tokenizer contract: strings in, (batch, context_length) int32 ids out.

Every step is a TensorFlow op, so a tokenizer runs inside `tf.data` and an
exported SavedModel. Subclasses (`WordPieceTokenizer`, `ClipBPETokenizer`)
register a type name; `Tokenizer.load` and the `Tokenizer.from_*`
constructors dispatch on it, so this module imports none of them.
"""

import json
import os

import numpy as np
import tensorflow as tf

from keras_clip.tokenizers.loading import CONFIG_FILE
from keras_clip.tokenizers.loading import locate_pretrained_files
from keras_clip.tokenizers.loading import read_saved_config

_TYPES = {}


def tokenizer_type(name):
    """The registered tokenizer class called `name` ("wordpiece", "clip_bpe")."""
    if name not in _TYPES:
        raise ValueError(f"Unknown tokenizer type {name!r}; known types are {sorted(_TYPES)}.")
    return _TYPES[name]


def check_context_length(context_length):
    """Raises ValueError unless `context_length` fits start, one piece and end."""
    if not isinstance(context_length, int) or context_length < 3:
        raise ValueError(f"context_length must be an integer >= 3, got {context_length!r}.")


class Tokenizer:
    """Tokenises captions to fixed-length id rows: start, pieces, end, padding.

    Ids: `pad_id` pads (after the tokens, or before them when
    `padding_side` is "left"); `start_id` (None: no start token, as
    SigLIP's) and `end_id` (None: no end token) frame each text; with the
    CLIP tokenizers here they are the two largest ids, so the end token is
    the largest id of a row and `TextTransformer(end_token_id=None)` pools
    at it. Texts longer than `context_length` are truncated so that
    the end token is always kept.

    Subclasses set `type_name` and the attributes `vocabulary`,
    `context_length`, `pad_id`, `start_id`, `end_id`, and implement
    `_token_ids` (1-D strings -> ragged ids without start/end),
    `detokenize`, `_save_files(path)` / `_config()` and the classmethod
    `_from_directory(path, config)`.

    Call arguments:
        texts: str, list of str, NumPy array or `tf.Tensor` of strings.

    Returns:
        int32 (batch, context_length): a NumPy array for Python/NumPy input,
        a `tf.Tensor` for tensor input (also inside tf.data or a
        `tf.function`). A scalar string gives (context_length,); an empty
        or whitespace-only one gives [start, end] (as open_clip's).

    Example:

    ```python
    tokenizer = keras_clip.Tokenizer.from_corpus(
        ["a red circle", "a blue square"], vocabulary_size=100, context_length=16)
    tokenizer(["a red circle", "a blue square"]).shape  # (2, 16)
    ```
    """

    type_name = None
    # "left" puts the padding before the tokens (some Gemma tokenizers).
    padding_side = "right"
    # Apply `cleaning.clean_text` (ftfy, HTML entities) to Python input and,
    # in `image_text_dataset`, to every caption; see `tokenizers.cleaning`.
    python_clean = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.type_name is not None:
            _TYPES[cls.type_name] = cls

    # === Constructors ===

    @classmethod
    def from_corpus(cls, texts, vocabulary_size, context_length=77, lower_case=True):
        """A `WordPieceTokenizer` with a vocabulary learned from `texts`
        (see `WordPieceTokenizer.from_corpus`)."""
        return tokenizer_type("wordpiece").from_corpus(
            texts, vocabulary_size, context_length, lower_case
        )

    @classmethod
    def from_clip_bpe(cls, path, context_length=77, num_merges=None):
        """CLIP's byte-level BPE from OpenAI's merges file (see
        `ClipBPETokenizer.from_merges_file`)."""
        return tokenizer_type("clip_bpe").from_merges_file(path, context_length, num_merges)

    @classmethod
    def from_pretrained(cls, path, context_length=None, python_clean=False):
        """The tokenizer of a checkpoint: a Hugging Face CLIP directory
        (vocab.json + merges.txt), a Hugging Face SigLIP, SigLIP 2 or
        XLM-RoBERTa directory (SentencePiece), a BERT one (vocab.txt: CLIPA),
        OpenAI's `bpe_simple_vocab_16e6.txt.gz`, or a directory written by
        `save` (which keeps its own context length); see
        `keras_clip.tokenizers.loading` for the layouts. The context
        length defaults to the checkpoint's (CLIP 77, SigLIP 64).
        `python_clean=True` adds OpenAI's ftfy and HTML clean-up (see
        `keras_clip.tokenizers.cleaning`): then the ids equal open_clip's.

        Example:

        ```python
        tokenizer = keras_clip.Tokenizer.from_pretrained("clip-vit-base-patch32/")
        ```
        """
        files = locate_pretrained_files(path)
        if files["layout"] == "saved":
            tokenizer = cls.load(files["directory"])
        else:
            given = {} if context_length is None else {"context_length": context_length}
            tokenizer = tokenizer_type(files["type"]).from_files(files, **given)
        tokenizer.python_clean = python_clean or tokenizer.python_clean
        return tokenizer

    @classmethod
    def load(cls, path):
        """Reads a tokenizer written by `save`, whatever its type."""
        config = read_saved_config(path)
        python_clean = config.pop("python_clean", False)
        tokenizer = tokenizer_type(config.get("type", "wordpiece"))._from_directory(path, config)
        tokenizer.python_clean = python_clean
        return tokenizer

    # === Properties ===

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    @property
    def end_token_id(self):
        return self.end_id

    def tf_resources(self):
        """The TensorFlow resources an exported SavedModel must track."""
        return []

    # === Tokenising ===

    def _token_ids(self, texts):
        raise NotImplementedError

    def tokenize(self, texts):
        """Tensor in, tensor out: (..., context_length) int32."""
        return self.tokenize_and_count(texts)[0]

    def tokenize_and_count(self, texts):
        """`tokenize`, and which texts lost tokens to the context length.

        Returns:
            (ids: int32 (..., context_length), truncated: bool (...))
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        scalar = texts.shape.rank == 0
        texts = tf.reshape(texts, [-1])
        all_pieces = self._token_ids(texts)
        # Room for the pieces: the start and end tokens the tokenizer has.
        room = self.context_length - sum(i is not None for i in (self.start_id, self.end_id))
        truncated = all_pieces.row_lengths() > room
        batch = tf.shape(texts)[0]
        parts = [tf.cast(all_pieces[:, :room], tf.int32)]
        if self.start_id is not None:
            parts.insert(0, tf.fill([batch, 1], self.start_id))
        if self.end_id is not None:
            parts.append(tf.fill([batch, 1], self.end_id))
        ids = tf.concat(parts, axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        ids = ids.to_tensor(self.pad_id, shape=[None, self.context_length])
        if self.padding_side == "left":
            # Row [t, pad...] -> [pad..., t]: position j takes (j + length) mod C.
            shifted = tf.range(self.context_length)[None, :] + lengths[:, None]
            ids = tf.gather(ids, shifted % self.context_length, batch_dims=1)
        return (ids[0], truncated[0]) if scalar else (ids, truncated)

    def __call__(self, texts):
        if isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
            return self.tokenize(texts)
        array = np.asarray(texts, dtype=object)
        flat = array.reshape(-1)
        # Undecodable bytes (e.g. from argv, as surrogates) pass through as
        # bytes, tokenised without error like non-UTF-8 tensor input.
        encoded = [
            t if isinstance(t, bytes) else str(t).encode("utf-8", "surrogateescape") for t in flat
        ]
        if self.python_clean:
            from keras_clip.tokenizers.cleaning import clean_bytes

            encoded = list(clean_bytes(encoded))
        ids = self.tokenize(tf.constant(encoded)).numpy()
        return ids[0] if array.ndim == 0 else ids

    def detokenize(self, token_ids):
        raise NotImplementedError

    # === Saving ===

    def save(self, path):
        """Writes the tokenizer's files and `tokenizer.json` to the directory `path`."""
        os.makedirs(path, exist_ok=True)
        self._save_files(path)
        with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
            config = {"type": self.type_name, **self._config()}
            if self.python_clean:
                config["python_clean"] = True
            json.dump(config, f, indent=2)
