"""A WordPiece caption tokenizer on tensorflow-text's `FastBertTokenizer`."""

import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

from keras_clip.tokenizers.base import Tokenizer
from keras_clip.tokenizers.base import check_context_length
from keras_clip.tokenizers.loading import OPEN_CLIP_CONTEXT_LENGTH

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
_VOCABULARY_FILE = "vocabulary.txt"


class WordPieceTokenizer(Tokenizer):
    """Lower-cases, splits words into WordPieces, adds start/end, pads.

    Ids (a vocabulary learned by `from_corpus`): 0 is padding, 1 unknown,
    and the two largest ids are start- and end-of-text, so (as with OpenAI's
    tokenizer) the end token is the largest id and
    `TextTransformer(end_token_id=None)` pools at it. A BERT vocabulary
    (`Tokenizer.from_pretrained` on a Hugging Face BERT directory, CLIPA's
    tokenizer) frames texts with "[CLS]" and "[SEP]" instead, as
    transformers' `BertTokenizer` does. Captions longer than
    `context_length` are truncated so that the end token is always kept.

    Args:
        vocabulary: list of str. WordPieces ("##" marks a continuation),
            containing "[PAD]" (first), "[UNK]", `start_token` and
            `end_token`.
        context_length: int. Tokens per caption, start and end included.
        lower_case: bool. Lower-case, NFD-normalise and strip accents.
        start_token, end_token: str. The framing tokens ("[START]" and
            "[END]"; BERT's "[CLS]" and "[SEP]").
        strip_end_token: bool. Write padding (id 0) where the end token
            goes: open_clip's `strip_sep_token` (CLIPA).

    Example:

    ```python
    tokenizer = WordPieceTokenizer.from_corpus(
        ["a red circle", "a blue square"], vocabulary_size=100, context_length=32)
    tokenizer(["a red circle", "a blue square"]).shape  # (2, 32)
    ```
    """

    type_name = "wordpiece"

    def __init__(
        self,
        vocabulary,
        context_length=77,
        lower_case=True,
        start_token=START,
        end_token=END,
        strip_end_token=False,
    ):
        vocabulary = [str(token) for token in vocabulary]
        missing = [t for t in (PAD, UNK, start_token, end_token) if t not in vocabulary]
        if missing:
            raise ValueError(f"The vocabulary lacks the special tokens {missing}.")
        if vocabulary[0] != PAD:
            raise ValueError(f"The vocabulary must start with {PAD} (id 0).")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("The vocabulary has duplicate entries.")
        check_context_length(context_length)
        self.vocabulary = vocabulary
        self.context_length = context_length
        self.lower_case = lower_case
        self.framing = {"start_token": start_token, "end_token": end_token}
        self.strip_end_token = strip_end_token
        self.pad_id = 0
        self.unknown_id = vocabulary.index(UNK)
        self.start_id = vocabulary.index(start_token)
        self.end_id = self.pad_id if strip_end_token else vocabulary.index(end_token)
        self._wordpiece = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            token_out_type=tf.int32,
            unknown_token=UNK,
            lower_case_nfd_strip_accents=lower_case,
        )

    @classmethod
    def from_corpus(cls, texts, vocabulary_size, context_length=77, lower_case=True):
        """Learns a WordPiece vocabulary of at most `vocabulary_size` entries.

        Args:
            texts: iterable of str (or a `tf.data.Dataset` of strings).
            vocabulary_size: int. Upper bound on the vocabulary, special
                tokens included.
            context_length: int.
            lower_case: bool.
        """
        if vocabulary_size < 8:
            raise ValueError(f"vocabulary_size must be at least 8, got {vocabulary_size}.")
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
    def from_files(cls, files, context_length=None):
        """A Hugging Face BERT tokenizer (`tokenizers.loading` found its
        files): the vocabulary from vocab.txt or tokenizer.json, lower-casing
        and framing tokens from tokenizer_config.json, and from an open_clip
        directory its context length and `strip_sep_token`."""
        settings, open_clip = files["settings"], files.get("open_clip") or {}
        if files["vocabulary"] is not None:
            with open(files["vocabulary"], encoding="utf-8", newline="\n") as f:
                vocabulary = f.read().rstrip("\n").split("\n")  # as transformers reads it
        else:
            ids = files["tokenizer_json"]["model"]["vocab"]
            vocabulary = sorted(ids, key=ids.get)
        if files.get("open_clip") is not None:  # open_clip passes its text_cfg's
            context_length = context_length or open_clip.get(
                "context_length", OPEN_CLIP_CONTEXT_LENGTH
            )
        context_length = context_length or min(int(settings.get("model_max_length", 512)), 512)
        return cls(
            vocabulary,
            context_length,
            lower_case=settings.get("do_lower_case", True),
            start_token=settings.get("cls_token", "[CLS]"),
            end_token=settings.get("sep_token", "[SEP]"),
            strip_end_token=(open_clip.get("tokenizer_kwargs") or {}).get("strip_sep_token", False),
        )

    def tf_resources(self):
        return [self._wordpiece]

    def _token_ids(self, texts):
        """1-D string tensor -> int32 ragged (batch, None) ids, no start/end."""
        pieces = self._wordpiece.tokenize(texts)
        if isinstance(pieces, tf.RaggedTensor) and pieces.ragged_rank > 1:
            pieces = pieces.merge_dims(1, -1)
        return pieces

    def detokenize(self, token_ids):
        """Maps ids back to space-separated WordPieces (for inspection)."""
        table = np.array(self.vocabulary, dtype=object)
        rows = []
        for row in np.atleast_2d(np.asarray(token_ids)):
            row = [i for i in row if i not in (self.pad_id, self.start_id, self.end_id)]
            rows.append(" ".join(table[row]).replace(" ##", ""))
        return rows

    def _save_files(self, path):
        with open(os.path.join(path, _VOCABULARY_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(self.vocabulary) + "\n")

    def _config(self):
        config = {"context_length": self.context_length, "lower_case": self.lower_case}
        if self.framing != {"start_token": START, "end_token": END} or self.strip_end_token:
            config.update(self.framing, strip_end_token=self.strip_end_token)
        return config

    @classmethod
    def _from_directory(cls, path, config):
        with open(os.path.join(path, _VOCABULARY_FILE), encoding="utf-8") as f:
            vocabulary = f.read().splitlines()
        framing = {
            key: config[key]
            for key in ("start_token", "end_token", "strip_end_token")
            if key in config
        }
        return cls(vocabulary, config["context_length"], config["lower_case"], **framing)
