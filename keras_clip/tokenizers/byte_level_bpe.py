"""GPT-2's byte-level BPE as RoBERTa frames it (open_clip's
`roberta-ViT-B-32`), on keras-hub's `BytePairTokenizer` (TensorFlow ops)."""

import json
import os

import tensorflow as tf

from keras_clip.tokenizers.base import Tokenizer
from keras_clip.tokenizers.base import check_context_length
from keras_clip.tokenizers.clip_bpe import read_merges
from keras_clip.tokenizers.loading import OPEN_CLIP_CONTEXT_LENGTH
from keras_clip.tokenizers.loading import token_text
from keras_clip.tokenizers.sentencepiece import WHITESPACE

_VOCABULARY_FILE = "vocab.json"
_MERGES_FILE = "merges.txt"


class ByteLevelBPETokenizer(Tokenizer):
    """GPT-2's byte-level BPE (keras-hub's `BytePairTokenizer`, whose ids
    are transformers' `RobertaTokenizer`'s) with RoBERTa's framing: "<s>"
    starts, "</s>" ends, "<pad>" pads after; truncation keeps the end.
    The special tokens written in a caption map to their ids.

    Args:
        vocabulary: dict, token -> id (Hugging Face's vocab.json).
        merges: list of str, "a b" merge rules, best first (merges.txt).
        context_length: int. Tokens per caption, start and end included.
        start_token, end_token, pad_token: str. The framing tokens.
        special_tokens: list of str matched in captions (default: the
            framing tokens, "<unk>" and "<mask>" where the vocabulary has them).
        clean_whitespace: bool. Collapse whitespace runs and strip first
            (open_clip's `HFTokenizer` default clean-up).

    Example:

    ```python
    tokenizer = keras_clip.Tokenizer.from_pretrained("roberta-base/")
    tokenizer(["a photo of a cat."]).shape  # (1, 512)
    ```
    """

    type_name = "byte_level_bpe"

    def __init__(
        self,
        vocabulary,
        merges,
        context_length=77,
        start_token="<s>",
        end_token="</s>",
        pad_token="<pad>",
        special_tokens=None,
        clean_whitespace=False,
    ):
        import keras_hub

        check_context_length(context_length)
        ids = {str(token): int(i) for token, i in vocabulary.items()}
        if sorted(ids.values()) != list(range(len(ids))):
            raise ValueError("The vocabulary does not number its tokens 0 to n-1.")
        framing = {"start": start_token, "end": end_token, "pad": pad_token}
        missing = {name: token for name, token in framing.items() if token not in ids}
        if missing:
            raise ValueError(f"The vocabulary lacks the framing tokens {missing}.")
        if special_tokens is None:
            special_tokens = [t for t in (*framing.values(), "<unk>", "<mask>") if t in ids]
        self.vocabulary = sorted(ids, key=ids.get)
        self.merges = list(merges)
        self.context_length = context_length
        self.framing = framing
        self.special_tokens = sorted(set(special_tokens))
        self.clean_whitespace = clean_whitespace
        self.start_id, self.end_id, self.pad_id = (ids[framing[k]] for k in ("start", "end", "pad"))
        self._bpe = keras_hub.tokenizers.BytePairTokenizer(
            vocabulary=ids, merges=self.merges, unsplittable_tokens=self.special_tokens
        )
        self._bpe.build(None)  # weightless; a SavedModel tracks only built layers
        # keras-hub hands eager callers Python lists; in a graph, ragged ids.
        self._pieces = tf.function(
            self._bpe.tokenize, input_signature=[tf.TensorSpec([None], tf.string)]
        )

    @classmethod
    def from_files(cls, files, context_length=None):
        """A Hugging Face RoBERTa directory (`tokenizers.loading` found its
        vocab.json and merges.txt), framed as its tokenizer_config.json says;
        from an open_clip directory, open_clip's context length and
        whitespace clean-up."""
        with open(files["vocabulary"], encoding="utf-8") as f:
            vocabulary = json.load(f)
        merges = _merge_rules(files["merges"])
        settings, open_clip = files["settings"], files.get("open_clip")
        if open_clip is not None:
            context_length = context_length or open_clip.get(
                "context_length", OPEN_CLIP_CONTEXT_LENGTH
            )
            clean = (open_clip.get("tokenizer_kwargs") or {}).get("clean", "whitespace")
            if clean != "whitespace":
                raise ValueError(f"open_clip tokenizer_kwargs clean={clean!r} is not supported.")
        context_length = context_length or min(int(settings.get("model_max_length", 512)), 512)
        return cls(
            vocabulary,
            merges,
            context_length,
            start_token=token_text(settings.get("bos_token", "<s>")),
            end_token=token_text(settings.get("eos_token", "</s>")),
            pad_token=token_text(settings.get("pad_token", "<pad>")),
            clean_whitespace=open_clip is not None,
        )

    def tf_resources(self):
        return [self._bpe]

    def _token_ids(self, texts):
        if self.clean_whitespace:
            texts = tf.strings.strip(tf.strings.regex_replace(texts, WHITESPACE, " "))
        return tf.cast(self._pieces(texts), tf.int32)

    def detokenize(self, token_ids):
        """Ids -> text without start, end and padding, for inspection."""
        framing = {self.start_id, self.end_id, self.pad_id}
        rows = []
        for row in tf.convert_to_tensor(token_ids).numpy().reshape(-1, self.context_length):
            kept = [int(i) for i in row if i not in framing]
            text = self._bpe.detokenize(kept)  # keras-hub gives eager callers Python strings
            rows.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
        return rows

    def _save_files(self, path):
        with open(os.path.join(path, _VOCABULARY_FILE), "w", encoding="utf-8") as f:
            json.dump({token: i for i, token in enumerate(self.vocabulary)}, f, ensure_ascii=False)
        with open(os.path.join(path, _MERGES_FILE), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{merge}\n" for merge in self.merges))

    def _config(self):
        return {
            "context_length": self.context_length,
            "start_token": self.framing["start"],
            "end_token": self.framing["end"],
            "pad_token": self.framing["pad"],
            "special_tokens": self.special_tokens,
            "clean_whitespace": self.clean_whitespace,
        }

    @classmethod
    def _from_directory(cls, path, config):
        with open(os.path.join(path, _VOCABULARY_FILE), encoding="utf-8") as f:
            vocabulary = json.load(f)
        settings = {k: v for k, v in config.items() if k != "type"}
        return cls(vocabulary, _merge_rules(os.path.join(path, _MERGES_FILE)), **settings)


def _merge_rules(path):
    """merges.txt's rules as "a b" strings (keras-hub's form)."""
    return [" ".join(merge) for merge in read_merges(path)]
