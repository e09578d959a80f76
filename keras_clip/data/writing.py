"""Writing an image-caption source as TFRecord shards."""

import math
import os

import tensorflow as tf

from keras_clip.data.shards import TFRECORD_SUFFIX
from keras_clip.data.sources import read_source
from keras_clip.validation import check_positive_ints


def write_tfrecords(
    source, output_dir, shard_size=1000, prefix="shard", image_column=None, caption_column=None
):
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

    ```python
    from keras_clip.data import image_text_dataset

    write_tfrecords("photos/captions.csv", "photos_tfrecords", shard_size=5000)
    train = image_text_dataset("photos_tfrecords", tokenizer, 224, 64)
    ```
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
            for index in range(shard * shard_size, min((shard + 1) * shard_size, len(examples))):
                writer.write(_example(examples, index).SerializeToString())
    return {"shards": paths, "images": len(examples), "skipped": dict(examples.skipped)}


def _example(examples, index):
    image = examples.images[index]
    if examples.kind == "files":
        with open(image, "rb") as f:
            image = f.read()
    elif examples.kind == "pixels":
        image = tf.io.encode_png(image).numpy()
    captions = [c.encode("utf-8") for c in examples.captions[index]]
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                "captions": tf.train.Feature(bytes_list=tf.train.BytesList(value=captions)),
            }
        )
    )
