"""Reading img2dataset's parquet output (image bytes and captions in
columns) into tf.data.

img2dataset `--output_format parquet` writes one `NNNNN.parquet` per shard
with a binary image column named after the encode format ("jpg", "png" or
"webp"; null where the download failed), a "txt" caption column and
metadata columns, in row groups of about 100 rows. Each shard is streamed
one row group at a time with pyarrow (its own file systems read `gs://`,
`s3://` and `hdfs://`). Reading the columns is Python (`tf.data.Dataset.from_generator`):
TensorFlow has no Parquet reader of its own (tensorflow-io's is not built
for current TensorFlow), but a row group is one call into pyarrow's C++,
and everything after it (JPEG decoding, augmentation, tokenising) stays in
the graph. `benchmarks/webdataset.py` compares the throughput.
"""

import logging

import tensorflow as tf

from keras_clip.data.locations import declared_size
from keras_clip.data.ordering import shard_elements
from keras_clip.data.shards import TFRECORD_SUFFIX
from keras_clip.data.tar_shards import SHARD_REASONS
from keras_clip.data.tar_shards import TAR_SUFFIX

PARQUET_SUFFIX = ".parquet"
IMAGE_COLUMNS = ("jpg", "png", "webp", "jpeg", "image", "image_bytes")
CAPTION_COLUMNS = ("txt", "caption", "text")
_MISSING_IMAGE = SHARD_REASONS.index("missing_image")
_MISSING_CAPTION = SHARD_REASONS.index("missing_caption")
_TRUNCATED = SHARD_REASONS.index("truncated")
logger = logging.getLogger("keras_clip.data")


def is_metadata_sidecar(path):
    """Whether a `.parquet` file is img2dataset's per-shard metadata (url,
    key, status, error_message, ...) written beside the shard it describes
    (`00000.parquet` next to the `00000/` folder of its `files` output, the
    `00000.tar` of its webdataset output or the `00000.tfrecord` of its
    tfrecord output), not a parquet data shard."""
    if not path.endswith(PARQUET_SUFFIX):
        return False
    stem = path[: -len(PARQUET_SUFFIX)]
    return tf.io.gfile.isdir(stem) or any(
        tf.io.gfile.exists(stem + suffix) for suffix in (TAR_SUFFIX, TFRECORD_SUFFIX)
    )


def _open(path):
    """A `pyarrow.parquet.ParquetFile`, through pyarrow's own file systems
    for URIs (gs://, s3://, hdfs://)."""
    try:
        import pyarrow.fs
        import pyarrow.parquet
    except ImportError:
        raise ImportError("Reading parquet shards needs pyarrow: pip install pyarrow.") from None
    if "://" in path:
        filesystem, inner = pyarrow.fs.FileSystem.from_uri(path)
        return pyarrow.parquet.ParquetFile(filesystem.open_input_file(inner))
    return pyarrow.parquet.ParquetFile(path)


def column_names(paths, image_column=None, caption_column=None):
    """The image and caption columns: the ones named, else the first of
    `IMAGE_COLUMNS` / `CAPTION_COLUMNS` in the first shard's schema.

    Returns:
        {"image_column": str, "caption_column": str}
    """
    names = _open(paths[0]).schema_arrow.names
    chosen = {}
    for key, given, usual in (
        ("image_column", image_column, IMAGE_COLUMNS),
        ("caption_column", caption_column, CAPTION_COLUMNS),
    ):
        found = [given] if given else [name for name in usual if name in names]
        if not found or found[0] not in names:
            raise ValueError(
                f"{paths[0]!r} has no {key.replace('_', ' ')} "
                f"{given or ' or '.join(usual)!r}; its columns are {names}."
            )
        chosen[key] = found[0]
    return chosen


def _row_groups(path, image_column, caption_column):
    """Yields (images, captions, skipped) for each row group of one shard;
    a shard that cannot be opened or read on counts its unread rows (at
    least one) as "truncated"."""
    path, image_column, caption_column = (
        v.decode() if isinstance(v, bytes) else v for v in (path, image_column, caption_column)
    )
    import pyarrow

    unread, group = 1, 0
    try:
        shard = _open(path)
        unread = shard.metadata.num_rows
        for group in range(shard.num_row_groups):
            table = shard.read_row_group(group, columns=[image_column, caption_column])
            unread -= table.num_rows
            yield _usable_rows(table.column(image_column), table.column(caption_column))
    except (OSError, pyarrow.ArrowException) as error:
        logger.warning("Parquet shard %s: row group %d unreadable (%s)", path, group, error)
        skipped = [0] * len(SHARD_REASONS)
        skipped[_TRUNCATED] = max(1, unread)
        yield [], [], skipped


def _usable_rows(images, captions):
    """(image bytes, captions, skipped counts) of one row group's columns."""
    skipped = [0] * len(SHARD_REASONS)
    kept_images, kept_captions = [], []
    for image, caption in zip(images.to_pylist(), captions.to_pylist()):
        if not image:
            skipped[_MISSING_IMAGE] += 1
        elif not isinstance(caption, str):
            skipped[_MISSING_CAPTION] += 1
        else:
            kept_images.append(image)
            kept_captions.append(caption.encode("utf-8"))
    return kept_images, kept_captions, skipped


def read_parquet_shards(
    paths, training, seed=0, epoch=None, report=None, resampled=False, **columns
):
    """Shard paths -> dataset of {"image", "captions" (1,), "index",
    "epoch"}, as `tar_shards.read_tar_shards` gives.

    Shards are read in `ordering.shard_elements`' order (training: up to 4
    at once, shuffled per epoch). Rows without image bytes or without a
    caption are skipped and counted in `report` ("missing_image",
    "missing_caption"). `columns`: `image_column` and `caption_column`.
    """
    signature = (
        tf.TensorSpec([None], tf.string),
        tf.TensorSpec([None], tf.string),
        tf.TensorSpec([len(SHARD_REASONS)], tf.int64),
    )
    names = (columns["image_column"], columns["caption_column"])

    def samples(pass_epoch, path):
        groups = tf.data.Dataset.from_generator(
            _row_groups, args=(path, *names), output_signature=signature
        )

        def rows(images, captions, skipped):
            if report is not None:
                images = report.record_shard(skipped, {"image": images})["image"]
            count = tf.size(images)
            return tf.data.Dataset.from_tensor_slices(
                {
                    "image": images,
                    "captions": tf.reshape(captions, [-1, 1]),
                    "epoch": tf.fill([count], pass_epoch),
                }
            )

        return groups.flat_map(rows)

    return shard_elements(paths, samples, training, seed, epoch, resampled)


def count_samples(paths, image_column, caption_column):
    """Usable rows: img2dataset's `NNNNN_stats.json` ("successes") when it
    is there, else rows with image bytes and a caption, read from the two
    columns once."""
    total = 0
    for path in paths:
        declared = declared_size(path)
        if declared is None:
            groups = _row_groups(path, image_column, caption_column)
            declared = sum(len(images) for images, _, _ in groups)
        total += declared
    return total
