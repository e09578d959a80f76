"""Reading TFRecord shards of encoded images and their captions.

Each record is a `tf.train.Example` with "image" (the encoded file's bytes,
or a PNG for in-memory pixels) and "captions" (one or more strings), as
`keras_clip.data.writing.write_tfrecords` writes them. Other writers name
their features otherwise: img2dataset's `tfrecord` output has "jpg" (or
"png", "webp") and "txt" beside its metadata; the names are found from the
first record, or given.
"""

import tensorflow as tf

from keras_clip.data.ordering import shard_order

TFRECORD_SUFFIX = ".tfrecord"
IMAGE_FEATURES = ("image", "jpg", "jpeg", "png", "webp")
CAPTION_FEATURES = ("captions", "caption", "txt", "text")
MAX_PARALLEL_SHARDS = 16


def feature_names(paths, image_feature=None, caption_feature=None):
    """The image and caption feature names of TFRecord shards: the given
    ones, else the first of the usual names in the first record."""
    present = []
    for record in tf.data.TFRecordDataset(list(paths)[:1]).take(1):
        present = list(tf.train.Example.FromString(record.numpy()).features.feature)
    names = []
    for given, usual, what in (
        (image_feature, IMAGE_FEATURES, "image"),
        (caption_feature, CAPTION_FEATURES, "caption"),
    ):
        found = given or next((name for name in usual if name in present), None)
        if found is None or present and found not in present:
            raise ValueError(
                f"The TFRecord shards ({paths[0]!r}, ...) have no {what} feature "
                f"{found or usual!r}; their features are {sorted(present)} (pass "
                f"{what}_column=)."
            )
        names.append(found)
    return {"image_feature": names[0], "caption_feature": names[1]}


def read_shards(
    paths,
    training,
    seed=0,
    epoch=None,
    image_feature="image",
    caption_feature="captions",
    resampled=False,
):
    """Shard paths -> dataset of {"image": encoded bytes, "captions": (n,),
    "index": position in the reading order, "epoch": the pass's epoch}.

    Training reads up to 16 shards at once, in an order shuffled per epoch
    (`epoch`, a variable; see `ordering.epoch_permutation`); evaluation
    reads them one after another, in order; `resampled` draws each pass's
    shards with replacement instead. `image_feature` and
    `caption_feature` name the features (see `feature_names`).
    """
    features = {
        image_feature: tf.io.FixedLenFeature([], tf.string),
        caption_feature: tf.io.VarLenFeature(tf.string),
    }

    def parse(index, epoch_and_record):
        pass_epoch, record = epoch_and_record
        example = tf.io.parse_single_example(record, features)
        return {
            "image": example[image_feature],
            "index": index,
            "epoch": pass_epoch,
            "captions": tf.sparse.to_dense(example[caption_feature], default_value=""),
        }

    if training:
        files = shard_order(paths, seed, epoch, resampled)
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
    return records.enumerate().map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def count_records(paths):
    """The number of records in TFRecord files (one pass, nothing parsed)."""
    dataset = tf.data.TFRecordDataset(list(paths), num_parallel_reads=tf.data.AUTOTUNE)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
