"""Counts of skipped examples (`DataReport`); `keras_clip.data.state` logs them.

Reasons: "missing_field" (a row without an image or caption),
"malformed_row" (a JSONL line that is not a JSON object), "missing_file",
"missing_image" and "missing_caption" (a webdataset sample, or an
img2dataset file, without one of the two), "truncated" (a shard sample cut
off by the end of a truncated or corrupt shard), "not_an_image" (bytes that
are no JPEG/PNG/GIF/BMP/WebP), "unreadable_image" (truncated or corrupt
files, read errors) and "empty_caption" (empty or whitespace-only). Image
problems count images, caption problems captions, shard problems samples.
"""

import collections

import tensorflow as tf

from keras_clip.data.tar_shards import SHARD_REASONS

STATIC_REASONS = ("missing_field", "malformed_row", "missing_file")
SCREENED_REASONS = ("not_an_image", "empty_caption")
# Counted in-graph: screening, shard reading, then images entering and
# leaving decoding (their difference counts unreadable images).
_COUNTED = SCREENED_REASONS + SHARD_REASONS + ("entered", "decoded", "truncated_captions")
REASONS = STATIC_REASONS + SHARD_REASONS + SCREENED_REASONS + ("unreadable_image",)


class DataReport:
    """What one dataset skipped during the current pass, by reason.

    The first three reasons are found when the source is read and recur on
    every pass; the others are counted by the pipeline as it runs (in
    TensorFlow variables, so they also count under `model.fit` on any
    backend). Counts are complete once a pass has finished.

    Args:
        static_counts: mapping reason -> count found when reading the source.
        origin: str, where the data came from (for messages).

    Example:

    ```python
    dataset = keras_clip.data.image_text_dataset("photos/", tokenizer, 224, 64)
    for batch in dataset: ...
    dataset.report.counts()  # {"missing_file": 2, "unreadable_image": 1, ...}
    ```
    """

    def __init__(self, static_counts=None, origin="dataset"):
        self.static_counts = collections.Counter(static_counts or {})
        self.origin = origin
        self._counts = tf.Variable(
            tf.zeros([len(_COUNTED)], tf.int64), trainable=False, name="skipped_examples"
        )

    def _add(self, **amounts):
        """In-graph: adds to the named counters; returns the update op."""
        return self._counts.assign_add(
            tf.stack([tf.cast(amounts.get(name, 0), tf.int64) for name in _COUNTED])
        )

    def record_screening(self, empty_captions, usable, missing_caption=False):
        """In-graph: counts one element's empty captions, whether it had no
        caption at all, and whether it goes on to decoding."""
        return self._add(
            empty_caption=empty_captions, missing_caption=missing_caption, entered=usable
        )

    def record_image(self, is_image):
        """In-graph, after decoding: one image decoded, or not an image."""
        is_image = tf.cast(is_image, tf.int64)
        return self._add(not_an_image=1 - is_image, decoded=is_image)

    def record_shard(self, skipped, found):
        """In-graph: counts one shard's skipped samples, int64
        (len(SHARD_REASONS),); returns `found` (a dict of tensors), read
        only after the count."""
        count = self._add(**{reason: skipped[i] for i, reason in enumerate(SHARD_REASONS)})
        with tf.control_dependencies([count]):
            return {name: tf.identity(value) for name, value in found.items()}

    def record_truncated_captions(self, truncated):
        """In-graph: a batch's captions cut to the context length (bool)."""
        return self._add(truncated_captions=tf.reduce_sum(tf.cast(truncated, tf.int64)))

    def truncated_captions(self):
        """Captions used in the current pass but cut to the context length
        (not skipped, so not among `counts()`)."""
        return int(self._counts.numpy()[_COUNTED.index("truncated_captions")])

    def counts(self):
        """dict reason -> number skipped in the current pass (all reasons)."""
        values = dict(zip(_COUNTED, (int(v) for v in self._counts.numpy())))
        counts = {
            reason: int(self.static_counts.get(reason, 0)) + values.get(reason, 0)
            for reason in REASONS
        }
        counts["unreadable_image"] = values["entered"] - values["decoded"] - values["not_an_image"]
        return counts

    def reset(self):
        """Starts counting a new pass."""
        self._counts.assign(tf.zeros_like(self._counts))

    def summary(self):
        """One line, e.g. "photos/captions.csv: skipped 2 missing_file"."""
        counts = {k: v for k, v in self.counts().items() if v}
        truncated = self.truncated_captions()
        cut = f"; {truncated} captions cut to the context length" if truncated else ""
        if not counts:
            return f"{self.origin}: nothing skipped{cut}"
        listed = ", ".join(f"{v} {k}" for k, v in counts.items())
        return f"{self.origin}: skipped {listed}{cut}"
