"""Reading TFRecord shards of encoded images and their captions.

Each record is a `tf.train.Example` with "image" (the encoded file's bytes,
or a PNG for in-memory pixels) and "captions" (one or more strings), as
`keras_clip.data.writing.write_tfrecords` writes them.
"""

import tensorflow as tf

from keras_clip.data.ordering import epoch_permutation

TFRECORD_SUFFIX = ".tfrecord"
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "captions": tf.io.VarLenFeature(tf.string),
}
MAX_PARALLEL_SHARDS = 16


def read_shards(paths, training, seed=0, epoch=None):
    """Shard paths -> dataset of {"image": encoded bytes, "captions": (n,),
    "index": position in the reading order, "epoch": the pass's epoch}.

    Training reads up to 16 shards at once, in an order shuffled per epoch
    (`epoch`, a variable; see `ordering.epoch_permutation`); evaluation
    reads them one after another, in order.
    """
    if training:
        files = epoch_permutation(len(paths), seed, epoch).map(
            lambda pass_epoch, i: (pass_epoch, tf.gather(tf.constant(list(paths)), i))
        )
        records = files.interleave(
            lambda pass_epoch, path: tf.data.TFRecordDataset(path).map(
                lambda record: (pass_epoch, record)
            ),
            cycle_length=min(len(paths), MAX_PARALLEL_SHARDS),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        files = tf.data.Dataset.from_tensor_slices(list(paths))
        records = files.flat_map(tf.data.TFRecordDataset).map(
            lambda record: (tf.constant(0, tf.int64), record)
        )
    return records.enumerate().map(_parse, num_parallel_calls=tf.data.AUTOTUNE)


def _parse(index, epoch_and_record):
    epoch, record = epoch_and_record
    example = tf.io.parse_single_example(record, FEATURES)
    return {
        "image": example["image"],
        "index": index,
        "epoch": epoch,
        "captions": tf.sparse.to_dense(example["captions"], default_value=""),
    }


def count_records(paths):
    """The number of records in TFRecord files (one pass, nothing parsed)."""
    dataset = tf.data.TFRecordDataset(list(paths), num_parallel_reads=tf.data.AUTOTUNE)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def read_captions(paths):
    """Every caption stored in the shards, as a list of str."""
    captions = read_shards(paths, training=False).map(lambda e: e["captions"]).unbatch()
    return [c.decode("utf-8", errors="replace") for c in captions.as_numpy_iterator()]
