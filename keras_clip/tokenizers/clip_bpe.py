"""CLIP's byte-level BPE tokenizer, as TensorFlow and tensorflow-text ops.

The vocabulary is built from a merges file the way OpenAI's CLIP builds it:
the 256 byte symbols, the same with the end-of-word mark "</w>", one entry
per merge, then "<|startoftext|>" and "<|endoftext|>" (the two largest ids).
Text is NFC-normalised, its whitespace runs collapsed to one space and
lower-cased; it is split with CLIP's pattern (contractions, letter runs,
single digits, other symbol runs); each piece's UTF-8 bytes are mapped to
symbols and merged by rank. A piece longer than `MAX_WORD_CHARACTERS` (no
word of any language is; base64 blobs, runs of one letter and other web
junk are) is tokenised as consecutive pieces of that many characters, each
ending a word: merging takes time that grows with the square of a piece's
length, and one 3,000-character piece took 9 s. Ids of every piece up to
that length are OpenAI's. Everything is a TF op, so the tokenizer runs in
tf.data and in an exported SavedModel.
"""

import gzip
import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_clip.tokenizers.base import Tokenizer
from keras_clip.tokenizers.base import check_context_length
from keras_clip.tokenizers.loading import check_vocabulary

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
CLIP_NUM_MERGES = 49152 - 256 - 2
SPLIT_PATTERN = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
    r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"
)
# Python's \s (as in OpenAI's whitespace_clean) is wider than RE2's.
WHITESPACE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]+"
# The control characters ftfy's fix_text (OpenAI's and open_clip's first
# clean-up step) deletes, before whitespace is collapsed: "a\x00b" is "ab".
# (tf.strings.lower and tf_text.regex_split would also stop at a NUL.)
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0e-\x1f\x7f\x{206a}-\x{206f}\x{feff}\x{fff9}-\x{fffc}]"
MAX_WORD_CHARACTERS = 300
_LONG_WORD_PARTS = f".{{1,{MAX_WORD_CHARACTERS}}}"
_MERGES_FILE = "merges.txt"
_NO_RANK = np.iinfo(np.int32).max
# Byte lengths that bound the merge loop's buckets (see `encode_words`).
_BUCKET_BYTES = (4, 8, 16, 32, 64, 128, 256, 512)


def byte_symbols():
    """The 256 printable symbols GPT-2 and CLIP use for bytes, in id order.

    Returns:
        list of (byte value, symbol) pairs: printable Latin-1 bytes stand
        for themselves, the other bytes for characters from U+0100 on.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    others = [b for b in range(256) if b not in printable]
    return [(b, chr(b)) for b in printable] + [(b, chr(256 + i)) for i, b in enumerate(others)]


def read_merges(path, num_merges=None):
    """Merge rules ("a b" lines after a "...#version..." header) from a file:
    the first `num_merges`, or all when None."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    # The header: "#version: 0.2" in Hugging Face's merges.txt, but
    # '"bpe_simple_vocab_16e6.txt#version: 0.2' in the file OpenAI and
    # open_clip ship (their loaders skip the first line unread).
    if lines and "#version" in lines[0]:
        lines = lines[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    bad = [i for i, merge in enumerate(merges) if len(merge) != 2]
    if bad:
        raise ValueError(
            f"{path!r}: merge rule(s) at line(s) {[i + 2 for i in bad[:5]]} "
            "are not two space-separated symbols."
        )
    return merges if num_merges is None else merges[:num_merges]


class ClipBPETokenizer(Tokenizer):
    """CLIP's byte-level BPE (same ids as OpenAI's and keras-hub's tokenizers).

    Ids: the start- and end-of-text ids are the two largest, so
    `TextTransformer(end_token_id=None)` pools at the end token; padding is
    0, as in OpenAI's `clip.tokenize`. Truncation keeps the end token.
    "<|startoftext|>" and "<|endoftext|>" written in a text map to their ids.
    Unlike OpenAI's Python tokenizer, text is not passed through ftfy and
    HTML entities are not unescaped (neither does keras-hub's), and a piece
    longer than `MAX_WORD_CHARACTERS` (300) is tokenised in parts of that
    length, so that any caption tokenises in time linear in its length.

    Args:
        merges: list of (str, str) merge rules, best first.
        context_length: int, tokens per text, start and end included.

    Example:

    ```python
    tokenizer = keras_clip.Tokenizer.from_clip_bpe("bpe_simple_vocab_16e6.txt.gz")
    tokenizer(["a photo of a cat."]).shape  # (1, 77)
    ```
    """

    type_name = "clip_bpe"

    def __init__(self, merges, context_length=77):
        check_context_length(context_length)
        self.merges = [tuple(m) for m in merges]
        symbols = [symbol for _, symbol in byte_symbols()]
        vocabulary = symbols + [s + END_OF_WORD for s in symbols]
        vocabulary += ["".join(merge) for merge in self.merges]
        known = set(vocabulary[:512])
        for rank, (first, second) in enumerate(self.merges):
            if first not in known or second not in known:
                raise ValueError(
                    f"Merge rule {rank} ({first!r} {second!r}) uses a symbol that "
                    "no earlier rule makes."
                )
            known.add(first + second)
        self.vocabulary = vocabulary + [START_OF_TEXT, END_OF_TEXT]
        self.context_length = context_length
        self.lower_case = True
        self.pad_id = 0
        self.unknown_id = None
        self.start_id = len(self.vocabulary) - 2
        self.end_id = len(self.vocabulary) - 1
        self._tables = _BPETables(self.vocabulary, self.merges)

    @classmethod
    def from_merges_file(cls, path, context_length=77, num_merges=None):
        """Reads OpenAI's merges file layout (gzipped or not)."""
        if num_merges is None:
            num_merges = CLIP_NUM_MERGES
        return cls(read_merges(os.fspath(path), num_merges), context_length)

    @classmethod
    def from_files(cls, files, context_length=77):
        """Reads a checkpoint's layout (see `tokenizers.loading`): OpenAI's
        merges file (its first 48,894 merges, as CLIP uses), or a Hugging Face
        `merges.txt` (all of it) checked id for id against its `vocab.json`."""
        if files["layout"] == "openai":
            return cls.from_merges_file(files["merges"], context_length)
        tokenizer = cls(read_merges(files["merges"]), context_length)
        if files["vocabulary"] is not None:
            check_vocabulary(files["vocabulary"], tokenizer.vocabulary)
        return tokenizer

    def tf_resources(self):
        return [self._tables]

    def _token_ids(self, texts):
        texts = tf_text.normalize_utf8(texts, "NFC")
        texts = tf.strings.regex_replace(texts, CONTROL_CHARACTERS, "")
        texts = tf.strings.regex_replace(texts, WHITESPACE, " ")
        texts = tf.strings.lower(tf.strings.strip(texts), encoding="utf-8")
        pieces = tf_text.regex_split(texts, SPLIT_PATTERN, SPLIT_PATTERN)
        pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(tf.strings.strip(pieces)) > 0)
        # Over-long pieces in parts of MAX_WORD_CHARACTERS (see the module docstring).
        parts = tf_text.regex_split(pieces.flat_values, _LONG_WORD_PARTS, _LONG_WORD_PARTS)
        # Each piece gives at least one token: pieces past the context's
        # length cannot reach the kept tokens, so they are not merged.
        pieces = pieces.with_flat_values(parts).merge_dims(1, 2)[:, : self.context_length]
        words, index = tf.unique(pieces.flat_values)
        is_start, is_end = words == START_OF_TEXT, words == END_OF_TEXT
        is_special = tf.logical_or(is_start, is_end)
        word_ids = self._tables.encode_words(tf.where(is_special, "", words))
        special_ids = tf.where(is_start, self.start_id, self.end_id)
        word_ids = tf.concat(
            [
                word_ids,
                tf.RaggedTensor.from_tensor(
                    special_ids[:, None], lengths=tf.cast(is_special, tf.int64)
                ),
            ],
            axis=1,
        )
        per_piece = tf.gather(word_ids, index)
        return pieces.with_flat_values(per_piece).merge_dims(1, 2)

    def detokenize(self, token_ids):
        """Ids -> text (bytes decoded, "</w>" as spaces), for inspection."""
        to_byte = {symbol: byte for byte, symbol in byte_symbols()}
        rows = []
        for row in np.atleast_2d(np.asarray(token_ids)):
            end = list(row).index(self.end_id) if self.end_id in row else len(row)
            text = "".join(self.vocabulary[i] for i in row[:end] if i != self.start_id)
            words = text.replace(END_OF_WORD, " ")
            data = bytes(to_byte.get(c, ord(" ")) for c in words)
            rows.append(data.decode("utf-8", errors="replace").strip())
        return rows

    def _save_files(self, path):
        with open(os.path.join(path, _MERGES_FILE), "w", encoding="utf-8") as f:
            f.write("#version: keras-clip\n")
            f.write("".join(f"{a} {b}\n" for a, b in self.merges))

    def _config(self):
        return {"context_length": self.context_length}

    @classmethod
    def _from_directory(cls, path, config):
        merges = read_merges(os.path.join(path, _MERGES_FILE))
        return cls(merges, config["context_length"])


class _BPETables(tf.Module):
    """Lookup tables and the merge loop (a tf.Module, so SavedModels keep it)."""

    def __init__(self, vocabulary, merges):
        super().__init__(name="clip_bpe")
        table = tf.lookup.StaticHashTable
        init = tf.lookup.KeyValueTensorInitializer
        pairs = byte_symbols()
        self.byte_to_symbol = table(
            init(tf.constant([bytes([b]) for b, _ in pairs]), tf.constant([s for _, s in pairs])),
            "",
        )
        self.merge_rank = table(
            init(
                tf.constant([f"{a} {b}" for a, b in merges] or ["\0"], tf.string),
                tf.constant(list(range(len(merges))) or [_NO_RANK], tf.int32),
            ),
            _NO_RANK,
        )
        self.token_id = table(
            init(tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int32)), -1
        )

    def encode_words(self, words):
        """1-D strings (one word each) -> int32 ragged (words, None) ids.

        Words are merged in buckets of similar byte length, so that the
        many short words neither pad to the longest one nor wait for its
        merges (the loop runs once per merge of the bucket's longest word).
        """
        lengths = tf.strings.length(words)
        bucket = tf.searchsorted(
            tf.constant(_BUCKET_BYTES, tf.int32), lengths, side="left", out_type=tf.int32
        )
        count = len(_BUCKET_BYTES) + 1
        parts = tf.dynamic_partition(words, bucket, count)
        order = tf.dynamic_partition(tf.range(tf.size(words)), bucket, count)
        encoded = tf.concat([self._encode_bucket(part) for part in parts], axis=0)
        return tf.gather(encoded, tf.math.invert_permutation(tf.concat(order, axis=0)))

    def _encode_bucket(self, words):
        symbols = self.byte_to_symbol.lookup(tf.strings.bytes_split(words))
        lengths = tf.cast(symbols.row_lengths(), tf.int32)
        dense = symbols.to_tensor("")
        last = tf.range(tf.shape(dense)[1])[None, :] == (lengths - 1)[:, None]
        dense = tf.where(last, tf.strings.join([dense, END_OF_WORD]), dense)
        dense, lengths = tf.while_loop(
            lambda dense, lengths: tf.reduce_any(self._best_positions(dense, lengths)[1]),
            self._merge_once,
            (dense, lengths),
            shape_invariants=(tf.TensorShape([None, None]), tf.TensorShape([None])),
        )
        merged = tf.RaggedTensor.from_tensor(dense, lengths=lengths)
        return tf.ragged.map_flat_values(self.token_id.lookup, merged)

    def _best_positions(self, dense, lengths):
        """Per word: the leftmost position of its best-ranked pair, and
        whether it has any pair in the merges."""
        width = tf.shape(dense)[1]
        pairs = tf.strings.join([dense[:, :-1], dense[:, 1:]], separator=" ")
        # (width 0: a batch of empty words, e.g. only "<|endoftext|>").
        valid = tf.range(tf.maximum(width - 1, 0))[None, :] < (lengths - 1)[:, None]
        ranks = tf.where(valid, self.merge_rank.lookup(pairs), _NO_RANK)
        best = tf.reduce_min(
            tf.concat([ranks, tf.fill([tf.shape(dense)[0], 1], _NO_RANK)], 1), axis=1
        )
        position = tf.argmin(
            tf.concat([ranks, tf.fill([tf.shape(dense)[0], 1], _NO_RANK)], 1),
            axis=1,
            output_type=tf.int32,
        )
        return position, best < _NO_RANK

    def _merge_once(self, dense, lengths):
        """Merges each word's leftmost best pair. With merges learned in order
        (every rule's symbols made by earlier rules), merging one occurrence
        at a time gives the same result as OpenAI's merging of all
        occurrences of the best pair at once."""
        position, active = self._best_positions(dense, lengths)
        width = tf.shape(dense)[1]
        merge_here = tf.logical_and(
            tf.one_hot(position, width, on_value=True, off_value=False, dtype=tf.bool),
            active[:, None],
        )
        following = tf.concat([dense[:, 1:], tf.fill([tf.shape(dense)[0], 1], "")], 1)
        merged = tf.where(merge_here, tf.strings.join([dense, following]), dense)
        dropped = tf.concat([tf.zeros_like(merge_here[:, :1]), merge_here[:, :-1]], 1)
        lengths = lengths - tf.cast(active, tf.int32)
        keep = tf.logical_not(dropped)
        merged = tf.ragged.boolean_mask(merged, keep)
        return merged.to_tensor(""), lengths
