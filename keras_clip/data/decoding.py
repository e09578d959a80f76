"""From source elements to decoded images: screening, decoding, counting.

Elements are dicts with "image" (a path, encoded bytes or pixels),
"captions" (str (None,)), "index" and "epoch"; `decoded_elements` keeps the
usable ones with their image decoded (training: randomly cropped and
flipped; evaluation: fitted to the square, `images.fit_to_square`) and counts the rest in a `DataReport`.
"""

import numpy as np
import tensorflow as tf

from keras_clip.data import images as image_ops
from keras_clip.data.naflex import naflex_patches
from keras_clip.data.ordering import epoch_permutation

AUTOTUNE = tf.data.AUTOTUNE


def indexed_elements(examples, seed, epoch):
    """In-memory and folder sources: indices (shuffled per epoch when
    `epoch` is given), mapped to data."""
    images = tf.constant(examples.images)
    flat = tf.constant([c for captions in examples.captions for c in captions])
    lengths = [len(captions) for captions in examples.captions]
    splits = tf.constant(np.concatenate([[0], np.cumsum(lengths)]), tf.int64)

    def element(pass_epoch, index):
        return {
            "image": tf.gather(images, index),
            "index": index,
            "epoch": pass_epoch,
            "captions": flat[splits[index] : splits[index + 1]],
        }

    if epoch is None:
        indices = tf.data.Dataset.range(len(examples)).map(
            lambda index: (tf.constant(0, tf.int64), index)
        )
    else:
        indices = epoch_permutation(len(examples), seed, epoch)
    return indices.map(element)


def decoded_elements(elements, report, kind, settings):
    """(element, seeds) pairs -> the usable elements, images decoded.

    Drops and counts in `report` empty captions, elements without one,
    non-images and unreadable images. `settings`: "preprocessing" (an
    `ImagePreprocessing` with its size), "training" and, for training, the
    crop and flip settings. Evaluation
    elements keep every key but "seeds" (e.g. a label carried along).
    """
    elements = elements.map(lambda element, seeds: _screen(element, seeds, report))
    elements = elements.filter(lambda element: element["usable"])
    elements = elements.map(
        lambda element: _decode(element, report, kind, settings), num_parallel_calls=AUTOTUNE
    )
    return elements.ignore_errors().filter(lambda element: element["usable"])


def _screen(element, seeds, report):
    """Drops empty captions; counts them, elements with no caption at all
    (e.g. a JSON caption field missing) and the elements left to decode."""
    captions = element["captions"]
    keep = tf.strings.length(tf.strings.strip(captions)) > 0
    captions = tf.boolean_mask(captions, keep)
    usable = tf.size(captions) > 0
    empty = tf.size(keep) - tf.size(captions)
    count = report.record_screening(empty, usable, missing_caption=tf.equal(tf.size(keep), 0))
    with tf.control_dependencies([count]):
        usable = tf.identity(usable)
    return dict(element, captions=captions, seeds=seeds, usable=usable)


def _decode(element, report, kind, settings):
    """Reads, checks, decodes and augments one image; picks its caption."""
    preprocessing = settings["preprocessing"]
    size = preprocessing.image_size
    if kind == "pixels":
        is_image = tf.constant(True)
        pixels = lambda: element["image"]  # noqa: E731
    else:
        encoded = tf.io.read_file(element["image"]) if kind == "files" else element["image"]
        is_image = image_ops.is_image_bytes(encoded)
        pixels = lambda: image_ops.decode_rgb(encoded)  # noqa: E731
    seeds = tf.cast(element["seeds"], tf.int32)
    captions = element["captions"]

    crops = settings["training"] and settings["crop_scale"] is not None
    naflex = preprocessing.is_naflex

    def transform():
        image = pixels()
        if naflex:  # kept at its own size until after the flip
            if not crops:
                return image
            seed = tf.stack([seeds[0], 0])
            return image_ops.random_crop(
                image, seed, settings["crop_scale"], settings["crop_ratio"]
            )
        if not crops:
            return image_ops.fit_to_square(image, preprocessing)
        return image_ops.random_resized_crop(
            image,
            size,
            tf.stack([seeds[0], 0]),
            settings["crop_scale"],
            settings["crop_ratio"],
            preprocessing.interpolation,
        )

    placeholder = [preprocessing.patch_size] * 2 if naflex else [size, size]
    image = tf.cond(is_image, transform, lambda: tf.zeros(placeholder + [3], tf.uint8))
    image.set_shape([None, None, 3] if naflex else [size, size, 3])
    if not settings["training"]:
        result = {k: v for k, v in element.items() if k not in ("image", "seeds", "usable")}
    else:
        pick = tf.random.stateless_uniform(
            [], tf.stack([seeds[1], 1]), 0, tf.size(captions), tf.int32
        )
        caption = captions[pick]
        if settings["horizontal_flip"]:
            flip = tf.random.stateless_uniform([], tf.stack([seeds[2], 2])) < 0.5
            image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
            caption = tf.cond(flip, lambda: image_ops.swap_left_right(caption), lambda: caption)
        result = {"caption": caption}
    if naflex:  # a dict of uint8 patches and the patch grid
        image = naflex_patches(image, preprocessing)
    with tf.control_dependencies(tf.nest.flatten(image)):  # count only decoded images
        count = report.record_image(is_image)
    with tf.control_dependencies([count]):
        result["image"] = tf.nest.map_structure(tf.identity, image)
        result["usable"] = tf.identity(is_image)
    return result
