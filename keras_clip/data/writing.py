"""Writing an image-caption source as TFRecord or webdataset tar shards."""

import io
import json
import math
import os
import tarfile
import time

import tensorflow as tf

from keras_clip.data.shards import TFRECORD_SUFFIX
from keras_clip.data.sources import SHARD_KINDS
from keras_clip.data.sources import read_source
from keras_clip.data.tar_shards import TAR_SUFFIX
from keras_clip.utils import ProgressBar
from keras_clip.utils.checks import check_positive_ints

FORMATS = ("tfrecord", "webdataset")


def write_shards(
    source,
    output_dir,
    format="tfrecord",
    shard_size=1000,
    prefix="shard",
    image_column=None,
    caption_column=None,
    progress=False,
):
    """Writes an image-caption source as shards.

    Rows the source reader rejects (missing fields or files, incomplete
    webdataset samples) are not written and are counted in the result;
    image bytes are written as they are and checked when read, as every
    source is. Webdataset shards hold one sample per image: `KEY.jpg` (or
    the image's own format), `KEY.txt` (its first caption) and, when it has
    several, `KEY.json` with all of them under "captions" (read them all
    with `caption_column="json:captions"`).

    Args:
        source: any source `image_text_dataset` reads.
        output_dir: folder to write `{prefix}-00000-of-000NN.tfrecord` (or
            `{prefix}-00000.tar`) into.
        format: "tfrecord" or "webdataset".
        shard_size: int, images per shard.
        prefix: str, shard file name prefix.
        image_column, caption_column: as in `image_text_dataset`.
        progress: bool, show a progress bar.

    Returns:
        dict: "shards" (paths), "images" (written) and "skipped" (by reason).

    Example:

    ```python
    from keras_clip.data import image_text_dataset

    write_shards("photos/captions.csv", "photos_wds", format="webdataset")
    train = image_text_dataset("photos_wds", tokenizer, 224, 64)
    ```
    """
    check_positive_ints(shard_size=shard_size)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}.")
    examples = read_source(source, image_column, caption_column)
    total = len(examples)
    os.makedirs(output_dir, exist_ok=True)
    num_shards = math.ceil(total / shard_size)
    bar = ProgressBar(total, unit_name="image", verbose=int(progress))
    records = _records(examples)
    paths, written = [], 0
    for shard in range(num_shards):
        batch = [record for _, record in zip(range(shard_size), records)]
        if not batch:
            break
        if format == "tfrecord":
            name = f"{prefix}-{shard:05d}-of-{num_shards:05d}{TFRECORD_SUFFIX}"
            _write_tfrecord(os.path.join(output_dir, name), batch)
        else:
            name = f"{prefix}-{shard:05d}{TAR_SUFFIX}"
            _write_tar(os.path.join(output_dir, name), batch, written)
        paths.append(os.path.join(output_dir, name))
        written += len(batch)
        bar.update(written)
    bar.close()
    skipped = dict(examples.skipped)
    return {"shards": paths, "images": written, "skipped": skipped}


def write_tfrecords(
    source, output_dir, shard_size=1000, prefix="shard", image_column=None, caption_column=None
):
    """`write_shards(..., format="tfrecord")`.

    Example:

    ```python
    write_tfrecords("photos/captions.csv", "photos_tfrecords", shard_size=5000)
    ```
    """
    return write_shards(
        source,
        output_dir,
        "tfrecord",
        shard_size=shard_size,
        prefix=prefix,
        image_column=image_column,
        caption_column=caption_column,
    )


def _records(examples):
    """(encoded image bytes, list of str captions) for each usable image."""
    if examples.kind in SHARD_KINDS:
        for element in examples.read_shards(training=False):
            captions = [c.decode("utf-8") for c in element["captions"].numpy()]
            yield element["image"].numpy(), captions
        return
    for index in range(len(examples)):
        image = examples.images[index]
        if examples.kind == "files":
            with open(image, "rb") as f:
                image = f.read()
        elif examples.kind == "pixels":
            image = tf.io.encode_png(image).numpy()
        yield image, list(examples.captions[index])


def _write_tfrecord(path, records):
    with tf.io.TFRecordWriter(path) as writer:
        for image, captions in records:
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                "captions": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[c.encode("utf-8") for c in captions])
                ),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def _image_extension(image):
    for magic, extension in ((b"\x89PNG", "png"), (b"RIFF", "webp"), (b"GIF8", "gif")):
        if image.startswith(magic):
            return extension
    return "jpg"


def _write_tar(path, records, first_key):
    """One webdataset shard, written to a temporary name and renamed."""
    partial = path + ".partial"
    with tf.io.gfile.GFile(partial, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
        for offset, (image, captions) in enumerate(records):
            key = f"{first_key + offset:09d}"
            members = [(_image_extension(image), image), ("txt", captions[0].encode("utf-8"))]
            if len(captions) > 1:
                members.append(("json", json.dumps({"captions": captions}).encode("utf-8")))
            for extension, payload in members:
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size, info.mtime, info.mode = len(payload), time.time(), 0o444
                tar.addfile(info, io.BytesIO(payload))
    tf.io.gfile.rename(partial, path, overwrite=True)
