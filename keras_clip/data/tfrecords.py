"""TFRecord shards of encoded images and their captions.

Each record is a `tf.train.Example` with "image" (the encoded file's bytes,
or a PNG for in-memory pixels) and "captions" (one or more strings).
"""

import math
import os

import tensorflow as tf

from keras_clip.data.ordering import epoch_permutation
from keras_clip.data.sources import TFRECORD_SUFFIX
from keras_clip.data.sources import read_source
from keras_clip.validation import check_positive_ints

_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "captions": tf.io.VarLenFeature(tf.string),
}
MAX_PARALLEL_SHARDS = 16


def write_tfrecords(source, output_dir, shard_size=1000, prefix="shard",
                    image_column=None, caption_column=None):
    """Writes an image-caption source as TFRecord shards.

    Rows the source reader rejects (missing fields or files) are not
    written and are counted in the result; image bytes are written as they
    are and checked when read, as every source is.

    Args:
        source: any source `image_text_dataset` reads, except shards.
        output_dir: folder to write `{prefix}-00000-of-000NN.tfrecord` into.
        shard_size: int, images per shard.
        prefix: str, shard file name prefix.
        image_column, caption_column: as in `image_text_dataset`.

    Returns:
        dict: "shards" (paths), "images" (written) and "skipped" (by reason).

    Example:

    >>> write_tfrecords("photos/captions.csv", "photos_tfrecords", shard_size=5000)
    >>> train = image_text_dataset("photos_tfrecords", tokenizer, 224, 256)
    """
    check_positive_ints(shard_size=shard_size)
    examples = read_source(source, image_column, caption_column)
    if examples.kind == "tfrecord":
        raise ValueError(f"{examples.origin!r} already is a set of TFRecord shards.")
    os.makedirs(output_dir, exist_ok=True)
    num_shards = math.ceil(len(examples) / shard_size)
    paths = []
    for shard in range(num_shards):
        name = f"{prefix}-{shard:05d}-of-{num_shards:05d}{TFRECORD_SUFFIX}"
        paths.append(os.path.join(output_dir, name))
        with tf.io.TFRecordWriter(paths[-1]) as writer:
            for index in range(shard * shard_size,
                               min((shard + 1) * shard_size, len(examples))):
                writer.write(_example(examples, index).SerializeToString())
    return {"shards": paths, "images": len(examples),
            "skipped": dict(examples.skipped)}


def _example(examples, index):
    image = examples.images[index]
    if examples.kind == "files":
        with open(image, "rb") as f:
            image = f.read()
    elif examples.kind == "pixels":
        image = tf.io.encode_png(image).numpy()
    captions = [c.encode("utf-8") for c in examples.captions[index]]
    return tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "captions": tf.train.Feature(bytes_list=tf.train.BytesList(value=captions)),
    }))


def read_shards(paths, training, seed=0, epoch=None):
    """Shard paths -> dataset of {"image": encoded bytes, "captions": (n,),
    "index": position in the reading order, "epoch": the pass's epoch}.

    Training reads up to 16 shards at once, in an order shuffled per epoch
    (`epoch`, a variable; see `ordering.epoch_permutation`); evaluation
    reads them one after another, in order.
    """
    if training:
        files = epoch_permutation(len(paths), seed, epoch).map(
            lambda pass_epoch, i: (pass_epoch, tf.gather(tf.constant(list(paths)), i)))
        records = files.interleave(
            lambda pass_epoch, path: tf.data.TFRecordDataset(path).map(
                lambda record: (pass_epoch, record)),
            cycle_length=min(len(paths), MAX_PARALLEL_SHARDS),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        files = tf.data.Dataset.from_tensor_slices(list(paths))
        records = files.flat_map(tf.data.TFRecordDataset).map(
            lambda record: (tf.constant(0, tf.int64), record))
    return records.enumerate().map(_parse, num_parallel_calls=tf.data.AUTOTUNE)


def _parse(index, epoch_and_record):
    epoch, record = epoch_and_record
    example = tf.io.parse_single_example(record, _FEATURES)
    return {"image": example["image"], "index": index, "epoch": epoch,
            "captions": tf.sparse.to_dense(example["captions"], default_value="")}


def count_records(paths):
    """The number of records in TFRecord files (one pass, nothing parsed)."""
    dataset = tf.data.TFRecordDataset(list(paths), num_parallel_reads=tf.data.AUTOTUNE)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def read_captions(paths):
    """Every caption stored in the shards, as a list of str."""
    captions = read_shards(paths, training=False).map(lambda e: e["captions"]).unbatch()
    return [c.decode("utf-8", errors="replace") for c in captions.as_numpy_iterator()]
