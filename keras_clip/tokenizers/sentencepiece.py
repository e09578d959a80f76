"""SigLIP's SentencePiece tokenizer, as TensorFlow and tensorflow-text ops.

Gives the ids of transformers' `SiglipTokenizer` with
`padding="max_length", truncation=True`: the text is lower-cased, ASCII
punctuation removed, whitespace runs collapsed to one space and stripped
(big_vision's canonicalisation), encoded with the SentencePiece model, and
ended with the end-of-sequence id; rows are padded to `context_length` with
the padding id (SigLIP's is the end id, "</s>") and truncated keeping the
end. Every step is a TF op (`tf_text.SentencepieceTokenizer`), so it runs
in tf.data and inside an exported SavedModel.
"""

import os

import tensorflow as tf
import tensorflow_text as tf_text

from keras_clip.tokenizers.base import Tokenizer

MODEL_FILE = "spiece.model"
# Python's string.punctuation (ASCII), as SiglipTokenizer removes it.
PUNCTUATION = r"[!-/:-@\[-`{-~]"
# Python's \s on str (what SiglipTokenizer collapses) is wider than RE2's.
WHITESPACE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]+"


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model with SigLIP's canonicalisation and framing.

    Ids: no start token; `end_id` ends every text and `pad_id` pads (both
    "</s>" in SigLIP's vocabulary); the text tower pools the last position,
    so every row is `context_length` long.

    Args:
        model: bytes, the serialized SentencePiece model (`spiece.model`).
        context_length: int, tokens per text, the end included (SigLIP: 64).
        lower_case: bool, lower-case first (SiglipTokenizer's
            `do_lower_case`, default True).
        end_piece: str, the end-of-sequence piece.
        pad_piece: str, the padding piece.

    Example:

    ```python
    tokenizer = keras_clip.Tokenizer.from_pretrained("siglip-base-patch16-224/")
    tokenizer(["a photo of a cat."]).shape  # (1, 64)
    ```
    """

    type_name = "sentencepiece"

    def __init__(
        self, model, context_length=64, lower_case=True, end_piece="</s>", pad_piece="</s>"
    ):
        if not isinstance(context_length, int) or context_length < 2:
            raise ValueError(f"context_length must be an integer >= 2, got {context_length!r}.")
        self.model = bytes(model)
        self.context_length = context_length
        self.lower_case = lower_case
        self.end_piece, self.pad_piece = end_piece, pad_piece
        self._processor = tf_text.SentencepieceTokenizer(model=self.model, out_type=tf.int32)
        size = int(self._processor.vocab_size())
        self.vocabulary = [
            piece.decode("utf-8") for piece in self._processor.id_to_string(tf.range(size)).numpy()
        ]
        for piece in (end_piece, pad_piece):
            if piece not in self.vocabulary:
                raise ValueError(f"The SentencePiece model has no {piece!r} piece.")
        self.end_id = self.vocabulary.index(end_piece)
        self.pad_id = self.vocabulary.index(pad_piece)
        self.start_id = None

    @classmethod
    def from_files(cls, files, context_length=None):
        """A Hugging Face SigLIP directory's `spiece.model` (see
        `tokenizers.loading`), with its `tokenizer_config.json` settings
        (`model_max_length`, `do_lower_case`) unless `context_length` is given."""
        with open(files["model"], "rb") as f:
            model = f.read()
        settings = files.get("settings", {})
        length = context_length or settings.get("model_max_length", 64)
        return cls(model, int(length), settings.get("do_lower_case", True))

    def tf_resources(self):
        return [self._processor]

    def _canonical(self, texts):
        if self.lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf.strings.regex_replace(texts, PUNCTUATION, "")
        return tf.strings.strip(tf.strings.regex_replace(texts, WHITESPACE, " "))

    def _token_ids(self, texts):
        return self._processor.tokenize(self._canonical(texts))

    def detokenize(self, token_ids):
        """Ids -> text (up to the first end id), for inspection."""
        rows = []
        for row in tf.convert_to_tensor(token_ids).numpy().reshape(-1, self.context_length):
            row = list(row)
            row = row[: row.index(self.end_id)] if self.end_id in row else row
            rows.append(self._processor.detokenize(tf.constant(row, tf.int32)).numpy().decode())
        return rows

    def _save_files(self, path):
        with open(os.path.join(path, MODEL_FILE), "wb") as f:
            f.write(self.model)

    def _config(self):
        return {
            "context_length": self.context_length,
            "lower_case": self.lower_case,
            "end_piece": self.end_piece,
            "pad_piece": self.pad_piece,
        }

    @classmethod
    def _from_directory(cls, path, config):
        with open(os.path.join(path, MODEL_FILE), "rb") as f:
            model = f.read()
        settings = {k: v for k, v in config.items() if k != "type"}
        return cls(model, **settings)
