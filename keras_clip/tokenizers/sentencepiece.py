"""SentencePiece tokenizers (SigLIP's, SigLIP 2's Gemma, XLM-R's, T5's,
NLLB's) as TensorFlow ops.

With its defaults it gives the ids of transformers' `SiglipTokenizer` with
`padding="max_length", truncation=True`: the text is lower-cased, ASCII
punctuation removed, whitespace runs collapsed to one space and stripped
(big_vision's canonicalisation), encoded with the SentencePiece model, and
ended with the end-of-sequence id; rows are padded to `context_length` with
the padding id (SigLIP's is the end id, "</s>") and truncated keeping the
end. Other settings give Gemma's framing (SigLIP 2: `tokenizer.model`, an
optional start token, padding "<pad>" on either side) and open_clip's
clean-up; `Tokenizer.from_pretrained` reads them from the checkpoint (see
`tokenizers.sentencepiece_settings`). Every step is a TF op
(`tf_text.SentencepieceTokenizer`), so it runs in tf.data and inside an
exported SavedModel.
"""

import os
import re

import tensorflow as tf
import tensorflow_text as tf_text

from keras_clip.tokenizers.base import Tokenizer
from keras_clip.tokenizers.nllb_proto import nllb_model_from_tokenizer_json
from keras_clip.tokenizers.sentencepiece_proto import added_pieces
from keras_clip.tokenizers.sentencepiece_proto import sentencepiece_model_from_tokenizer_json
from keras_clip.tokenizers.sentencepiece_settings import sentencepiece_settings
from keras_clip.tokenizers.sentencepiece_settings import tokenizer_class
from keras_clip.tokenizers.unigram_proto import fairseq_ordered_model
from keras_clip.tokenizers.unigram_proto import unigram_model_from_tokenizer_json
from keras_clip.tokenizers.unigram_proto import with_sentinels

MODEL_FILE = "spiece.model"
# Python's string.punctuation (ASCII), as SiglipTokenizer removes it.
PUNCTUATION = r"[!-/:-@\[-`{-~]"
# Python's \s on str (what SiglipTokenizer collapses) is wider than RE2's.
WHITESPACE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]+"
SIGLIP_CLEANING = ("lower", "punctuation", "whitespace")
CLEANING_STEPS = ("underscores", "lower", "punctuation", "whitespace")


def _clean(texts, step):
    if step == "lower":
        return tf.strings.lower(texts, encoding="utf-8")
    if step == "underscores":
        return tf.strings.regex_replace(texts, "_", " ")
    if step == "punctuation":
        return tf.strings.regex_replace(texts, PUNCTUATION, "")
    return tf.strings.strip(tf.strings.regex_replace(texts, WHITESPACE, " "))


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model with a checkpoint's clean-up and framing.

    Ids: `start_id` (None: no start token) and `end_id` (None: no end
    token) frame each text, `pad_id` pads on `padding_side`. SigLIP ends
    with "</s>" and pads with it; SigLIP 2 (Gemma's vocabulary) as its
    checkpoint says, e.g. no start, "<eos>" at the end, "<pad>" after. The
    text towers pool the last position, so every row is `context_length` long.

    Args:
        model: bytes, the serialized SentencePiece model (`spiece.model`,
            or Gemma's `tokenizer.model`).
        context_length: int, tokens per text, start and end included
            (SigLIP and SigLIP 2: 64).
        cleaning: sequence of steps applied before encoding, in order:
            "underscores" (to spaces), "lower", "punctuation" (ASCII
            punctuation removed), "whitespace" (runs collapsed, stripped).
            Default SiglipTokenizer's ("lower", "punctuation", "whitespace").
        start_piece: str or None, the piece that starts every text.
        end_piece: str or None, the piece that ends every text.
        pad_piece: str, the padding piece.
        padding_side: "right" or "left".
        special_pieces: strings matched in the (cleaned) text and given
            their own ids before SentencePiece runs on the text between
            them, longest first, as transformers does with added tokens
            ("<eos>" written in a caption is then the end id). Default none.
        left_stripping_pieces: those of `special_pieces` that take the
            whitespace before them (transformers' `lstrip`, NLLB's "<mask>").

    Example:

    ```python
    tokenizer = keras_clip.Tokenizer.from_pretrained("siglip-base-patch16-224/")
    tokenizer(["a photo of a cat."]).shape  # (1, 64)
    ```
    """

    type_name = "sentencepiece"

    def __init__(
        self,
        model,
        context_length=64,
        cleaning=SIGLIP_CLEANING,
        start_piece=None,
        end_piece="</s>",
        pad_piece="</s>",
        padding_side="right",
        special_pieces=(),
        left_stripping_pieces=(),
    ):
        framing = (start_piece is not None) + (end_piece is not None)
        if not isinstance(context_length, int) or context_length < framing + 1:
            raise ValueError(
                f"context_length must be an integer >= {framing + 1}, got {context_length!r}."
            )
        unknown = [step for step in cleaning if step not in CLEANING_STEPS]
        if unknown:
            raise ValueError(f"Unknown cleaning steps {unknown}; known: {CLEANING_STEPS}.")
        if padding_side not in ("right", "left"):
            raise ValueError(f'padding_side must be "right" or "left", got {padding_side!r}.')
        self.model = bytes(model)
        self.context_length = context_length
        self.cleaning = list(cleaning)
        self.start_piece, self.end_piece, self.pad_piece = start_piece, end_piece, pad_piece
        self.padding_side = padding_side
        self.special_pieces = sorted(set(special_pieces), key=lambda piece: (-len(piece), piece))
        self.left_stripping_pieces = sorted(set(left_stripping_pieces))
        if not set(self.left_stripping_pieces) <= set(self.special_pieces):
            raise ValueError("left_stripping_pieces must be among special_pieces.")
        self._special_pattern = "|".join(
            (r"\s*" if piece in self.left_stripping_pieces else "") + re.escape(piece)
            for piece in self.special_pieces
        )
        self._processor = tf_text.SentencepieceTokenizer(model=self.model, out_type=tf.int32)
        size = int(self._processor.vocab_size())
        self.vocabulary = [
            piece.decode("utf-8") for piece in self._processor.id_to_string(tf.range(size)).numpy()
        ]
        ids = {}
        for name, piece in (("start", start_piece), ("end", end_piece), ("pad", pad_piece)):
            if piece is not None and piece not in self.vocabulary:
                raise ValueError(f"The SentencePiece model has no {name} piece {piece!r}.")
            ids[name] = None if piece is None else self.vocabulary.index(piece)
        self.start_id, self.end_id, self.pad_id = ids["start"], ids["end"], ids["pad"]
        missing = [piece for piece in self.special_pieces if piece not in self.vocabulary]
        if missing:
            raise ValueError(f"special_pieces {missing[:5]} are not in the SentencePiece model.")

    @classmethod
    def from_files(cls, files, context_length=None):
        """A Hugging Face or open_clip directory's `spiece.model`,
        `tokenizer.model`, `sentencepiece.bpe.model` or `tokenizer.json`
        (byte-fallback BPE or Unigram), framed and cleaned as its settings
        say (see `sentencepiece_settings`); `context_length` overrides theirs."""
        settings = sentencepiece_settings(files)  # names an unknown class first
        t5 = tokenizer_class(files) == "T5Tokenizer"
        if files["model"] is None:  # the tokenizer.json alone, in its own id order
            if files["kind"] == "nllb":
                model = nllb_model_from_tokenizer_json(files["tokenizer_json"])
            elif files["kind"] == "unigram":
                model = unigram_model_from_tokenizer_json(files["tokenizer_json"])
            else:
                model = sentencepiece_model_from_tokenizer_json(files["tokenizer_json"])
        else:
            with open(files["model"], "rb") as f:
                model = f.read()
            if files["kind"] == "fairseq":  # pieces in transformers' id order
                model = fairseq_ordered_model(model)
            elif t5:  # transformers appends the sentinels
                model = with_sentinels(model, files["settings"].get("extra_ids", 100))
        if files["kind"] != "siglip" or t5:  # the tokenizers-backed classes match added tokens
            pieces, stripping = added_pieces(model, files.get("tokenizer_json"))
            settings.update(special_pieces=pieces, left_stripping_pieces=stripping)
        if context_length:
            settings["context_length"] = context_length
        return cls(model, **settings)

    def for_language(self, code):
        """The same tokenizer with the language code `code` (e.g. "fra_Latn")
        as its start piece: NLLB frames each caption with its language's
        code (transformers' `src_lang`), and NLLB-CLIP pools at it."""
        if self.start_piece not in self.special_pieces or code not in self.special_pieces:
            raise ValueError(
                f"{code!r} is not one of this tokenizer's language codes (it starts captions "
                f"with {self.start_piece!r})."
            )
        return SentencePieceTokenizer(self.model, **{**self._config(), "start_piece": code})

    def tf_resources(self):
        return [self._processor]

    def _canonical(self, texts):
        for step in self.cleaning:
            texts = _clean(texts, step)
        return texts

    def _token_ids(self, texts):
        texts = self._canonical(texts)
        if not self.special_pieces:
            return self._processor.tokenize(texts)
        pattern = self._special_pattern
        segments = tf_text.regex_split(texts, pattern, pattern)
        flat = segments.flat_values
        is_special = tf.strings.regex_full_match(flat, pattern)
        ids = self._processor.tokenize(tf.where(is_special, "", flat))
        if self.left_stripping_pieces:  # the whitespace such a piece took
            stripping = "|".join(re.escape(piece) for piece in self.left_stripping_pieces)
            flat_pieces = tf.strings.regex_replace(flat, rf"^\s+({stripping})$", r"\1")
        else:
            flat_pieces = flat
        special_ids = self._processor.string_to_id(flat_pieces)
        special = tf.RaggedTensor.from_tensor(
            special_ids[:, None], lengths=tf.cast(is_special, tf.int64)
        )
        ids = tf.concat([ids, tf.cast(special, ids.dtype)], axis=1)
        return segments.with_flat_values(ids).merge_dims(1, 2)

    def detokenize(self, token_ids):
        """Ids -> text without start, end and padding, for inspection."""
        rows = []
        framing = {self.start_id, self.end_id, self.pad_id}
        for row in tf.convert_to_tensor(token_ids).numpy().reshape(-1, self.context_length):
            row = [i for i in row if i not in framing]
            rows.append(self._processor.detokenize(tf.constant(row, tf.int32)).numpy().decode())
        return rows

    def _save_files(self, path):
        with open(os.path.join(path, MODEL_FILE), "wb") as f:
            f.write(self.model)

    def _config(self):
        return {
            "context_length": self.context_length,
            "cleaning": self.cleaning,
            "start_piece": self.start_piece,
            "end_piece": self.end_piece,
            "pad_piece": self.pad_piece,
            "padding_side": self.padding_side,
            "special_pieces": self.special_pieces,
            "left_stripping_pieces": self.left_stripping_pieces,
        }

    @classmethod
    def _from_directory(cls, path, config):
        with open(os.path.join(path, MODEL_FILE), "rb") as f:
            model = f.read()
        settings = {k: v for k, v in config.items() if k != "type"}
        if "lower_case" in settings:  # written before the cleaning steps existed
            lower = settings.pop("lower_case")
            settings["cleaning"] = [s for s in SIGLIP_CLEANING if lower or s != "lower"]
        return cls(model, **settings)
