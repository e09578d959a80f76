"""CLIP's image preprocessing as TensorFlow ops (tf.data and SavedModels).

Decoding turns every common file into RGB: grayscale and palette images are
expanded, the alpha channel of RGBA is dropped (as PIL's `convert("RGB")`
does), 16-bit PNGs are scaled to 8 bits and JPEGs are turned upright by
their EXIF orientation tag. Evaluation fits the image to the model's square
(`fit_to_square`: by default the short side resized with bicubic
interpolation and the centre cropped, as OpenAI's CLIP; "squash" and
"longest" as open_clip's `resize_mode`, e.g. SigLIP squashes); training
takes a random resized crop. Both normalise with per-channel mean and
standard deviation. The settings come whole from a model's
`ImagePreprocessing` (`keras_clip.models.preprocessing`).

Example:

```python
image = decode_rgb(tf.io.read_file("cat.jpg"))          # uint8 (H, W, 3)
pixels = fit_to_square(image, model.image_preprocessing)  # uint8 (S, S, 3)
inputs = normalize(pixels, model.image_preprocessing)   # float32
```
"""

import tensorflow as tf

from keras_clip.data.naflex import naflex_patches
from keras_clip.data.resampling import antialiased_resize_to_uint8
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.preprocessing import as_image_preprocessing

# Leading bytes of the formats `tf.io.decode_image` reads.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
_EXIF_HEADER = (69, 120, 105, 102, 0, 0)  # "Exif\0\0"
_EXIF_SEARCH_BYTES = 65536
_ORIENTATION_TAG = 0x0112
_MAX_IFD_ENTRIES = 64


def is_image_bytes(encoded):
    """True when a scalar string starts like a JPEG, PNG, GIF, BMP or WebP."""
    head = tf.strings.substr(tf.strings.join([encoded, b"\0" * 12]), 0, 12)
    known = [tf.strings.substr(head, 0, len(s)) == s for s in _SIGNATURES]
    webp = tf.logical_and(
        tf.strings.substr(head, 0, 4) == b"RIFF", tf.strings.substr(head, 8, 4) == b"WEBP"
    )
    return tf.reduce_any(tf.stack(known + [webp]))


def exif_orientation(encoded):
    """The EXIF orientation (1-8) of a JPEG's bytes; 1 when it has none.

    Reads the first APP1 "Exif" block's TIFF header and looks for tag 0x0112
    among the first entries of IFD0, in either byte order.
    """
    head = tf.strings.substr(encoded, 0, _EXIF_SEARCH_BYTES)
    data = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32)
    size = tf.shape(data)[0]
    span = tf.maximum(size - len(_EXIF_HEADER) + 1, 0)
    found = tf.ones([span], tf.bool)
    for offset, byte in enumerate(_EXIF_HEADER):
        found = tf.logical_and(found, data[offset : offset + span] == byte)
    positions = tf.where(found)[:, 0]

    def byte_at(index):
        index = tf.convert_to_tensor(index)
        return tf.gather(data, tf.clip_by_value(index, 0, tf.maximum(size - 1, 0)))

    def parse():
        tiff = tf.cast(positions[0], tf.int32) + len(_EXIF_HEADER)
        little = tf.logical_and(byte_at(tiff) == 73, byte_at(tiff + 1) == 73)

        def read(index, length):
            values = [byte_at(index + i) for i in range(length)]
            weights = [256**i for i in range(length)]
            little_value = sum(v * w for v, w in zip(values, weights))
            big_value = sum(v * w for v, w in zip(values, reversed(weights)))
            return tf.where(little, little_value, big_value)

        ifd = tiff + read(tiff + 4, 4)
        count = tf.minimum(read(ifd, 2), _MAX_IFD_ENTRIES)
        entries = ifd + 2 + 12 * tf.range(_MAX_IFD_ENTRIES)
        tags = read(entries, 2)
        values = read(entries + 8, 2)
        is_orientation = tf.logical_and(
            tags == _ORIENTATION_TAG, tf.range(_MAX_IFD_ENTRIES) < count
        )
        in_bounds = entries + 10 <= size
        matches = tf.where(tf.logical_and(is_orientation, in_bounds))[:, 0]
        value = tf.cond(
            tf.size(matches) > 0, lambda: tf.gather(values, matches[0]), lambda: tf.constant(1)
        )
        return tf.where((value >= 1) & (value <= 8), value, 1)

    return tf.cond(tf.size(positions) > 0, parse, lambda: tf.constant(1))


def apply_orientation(image, orientation):
    """Turns an (H, W, C) image upright for an EXIF orientation 1-8."""
    transpose = lambda x: tf.transpose(x, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,
        lambda: tf.image.flip_left_right(image),
        lambda: tf.image.rot90(image, 2),
        lambda: tf.image.flip_up_down(image),
        lambda: transpose(image),
        lambda: tf.image.rot90(image, 3),
        lambda: tf.image.rot90(transpose(image), 2),
        lambda: tf.image.rot90(image, 1),
    ]
    return tf.switch_case(tf.cast(orientation, tf.int32) - 1, branches)


def decode_rgb(encoded):
    """Encoded JPEG/PNG/GIF/BMP/WebP bytes -> upright uint8 RGB (H, W, 3).

    JPEGs are decoded with libjpeg's accurate integer DCT, as PIL decodes
    them (and so open_clip, Hugging Face and CLIP_benchmark): TensorFlow's
    default, the fast DCT, is up to 9 levels off PIL's pixels.
    """
    is_jpeg = tf.strings.substr(encoded, 0, 3) == _SIGNATURES[0]
    image = tf.cond(
        is_jpeg,
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False),
    )
    orientation = tf.cond(is_jpeg, lambda: exif_orientation(encoded), lambda: tf.constant(1))
    image = apply_orientation(image, orientation)
    image.set_shape([None, None, 3])
    return image


def fit_to_square(image, preprocessing):
    """Fits an image to the model's square, as open_clip's `resize_mode`.

    Args:
        image: uint8 (height, width, 3).
        preprocessing: the model (its own), its `ImagePreprocessing`, or an
            int (OpenAI's settings at that size). Its resize_mode:
            "shortest" (short side to the square, centre crop: OpenAI's
            CLIP), "squash" (both sides, the aspect ratio lost: SigLIP) or
            "longest" (long side, the rest padded with black around the
            centre); its interpolation "bicubic" or "bilinear" (antialiased).

    Returns:
        uint8 (image_size, image_size, 3).
    """
    preprocessing = as_image_preprocessing(preprocessing)
    image_size = preprocessing.image_size
    resize_mode, interpolation = preprocessing.resize_mode, preprocessing.interpolation
    if resize_mode == "squash":
        return antialiased_resize_to_uint8(image, [image_size, image_size], interpolation)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    if resize_mode == "longest":
        scale = image_size / tf.reduce_max(shape)
        new_size = tf.clip_by_value(tf.cast(tf.round(shape * scale), tf.int32), 1, image_size)
        resized = antialiased_resize_to_uint8(image, new_size, interpolation)
        top = (image_size - new_size[0]) // 2
        left = (image_size - new_size[1]) // 2
        padding = [[top, image_size - new_size[0] - top], [left, image_size - new_size[1] - left]]
        return tf.pad(resized, padding + [[0, 0]])
    scale = image_size / tf.reduce_min(shape)
    # As torchvision's Resize(int): the long side is truncated, not rounded.
    new_size = tf.maximum(tf.cast(shape * scale, tf.int32), image_size)
    resized = antialiased_resize_to_uint8(image, new_size, interpolation)
    top = (new_size[0] - image_size) // 2
    left = (new_size[1] - image_size) // 2
    return resized[top : top + image_size, left : left + image_size]


def fit_image(image, preprocessing):
    """One image fitted to a model's input, as its preprocessing says: the
    square (`fit_to_square`), or a NaFlex patch sequence
    (`keras_clip.data.naflex.naflex_patches`: a dict of uint8 "patches" and
    "spatial_shapes")."""
    if preprocessing.is_naflex:
        return naflex_patches(image, preprocessing)
    return fit_to_square(image, preprocessing)


def center_crop(image, image_size):
    """Bicubic resize of the short side to `image_size`, then a centre crop
    (`fit_to_square` with its defaults, OpenAI's CLIP preprocessing).

    Args:
        image: uint8 (height, width, 3).
        image_size: int, the side of the square output.

    Returns:
        uint8 (image_size, image_size, 3).
    """
    return fit_to_square(image, image_size)


def random_crop(image, seed, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3)):
    """A random crop of `scale` of the area and `ratio` aspect (not resized:
    NaFlex keeps its aspect ratio).

    Args:
        image: uint8 (height, width, 3).
        seed: int32 (2,), a stateless seed.
        scale: (min, max) fraction of the image area the crop covers.
        ratio: (min, max) width / height of the crop.

    Returns:
        uint8 (crop height, crop width, 3).
    """
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, crop_size)


def random_resized_crop(
    image, image_size, seed, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic"
):
    """A random crop of `scale` of the area and `ratio` aspect, resized.

    Args:
        image: uint8 (height, width, 3).
        image_size: int, the side of the square output.
        seed: int32 (2,), a stateless seed.
        scale: (min, max) fraction of the image area the crop covers.
        ratio: (min, max) width / height of the crop.
        interpolation: "bicubic" or "bilinear" (antialiased).

    Returns:
        uint8 (image_size, image_size, 3).
    """
    crop = random_crop(image, seed, scale, ratio)
    return antialiased_resize_to_uint8(crop, [image_size, image_size], interpolation)


def normalize(images, preprocessing=None):
    """uint8 images -> float32 (x / 255 - mean) / std with the mean and std
    of `preprocessing` (an `ImagePreprocessing`; None: OpenAI's); a NaFlex
    dict of uint8 "patches" and "spatial_shapes" -> the same dict with the
    patches normalised and the padding patches zero (as transformers pads
    after normalising). The TF twin of `ImagePreprocessing.normalize`."""
    preprocessing = preprocessing or ImagePreprocessing()
    if isinstance(images, dict):
        patches, spatial_shapes = images["patches"], images["spatial_shapes"]
        pixels = tf.reshape(patches, tf.concat([tf.shape(patches)[:-1], [-1, 3]], 0))
        pixels = tf.reshape(normalize(pixels, preprocessing), tf.shape(patches))
        real = tf.range(tf.shape(patches)[-2]) < tf.reduce_prod(spatial_shapes, axis=-1)[..., None]
        return {**images, "patches": pixels * tf.cast(real, tf.float32)[..., None]}
    mean = tf.constant(preprocessing.mean, tf.float32) * 255.0
    std = tf.constant(preprocessing.std, tf.float32) * 255.0
    return (tf.cast(images, tf.float32) - mean) / std


def swap_left_right(captions):
    """Swaps the words "left" and "right" (any case), for flipped images."""
    marker = "\x00"
    swapped = tf.strings.regex_replace(captions, r"\b([Ll])eft\b", marker + r"\1")
    swapped = tf.strings.regex_replace(swapped, r"\bright\b", "left")
    swapped = tf.strings.regex_replace(swapped, r"\bRight\b", "Left")
    swapped = tf.strings.regex_replace(swapped, marker + "l", "right")
    return tf.strings.regex_replace(swapped, marker + "L", "Right")


def load_images(paths, preprocessing):
    """Image files as one uint8 RGB array, fitted to the model's square
    (`fit_to_square`).

    Args:
        paths: list of JPEG, PNG, GIF or BMP file paths.
        preprocessing: the model (its own settings), its
            `ImagePreprocessing`, or an int (OpenAI's settings at that size).

    Returns:
        uint8 NumPy array (len(paths), image_size, image_size, 3), ready for
        `ZeroShotClassifier` (which normalises it with the model's
        constants); for a NaFlex model, a dict of uint8 "patches" and
        "spatial_shapes" (`keras_clip.data.naflex`), taken the same way.

    Example:

    ```python
    images = load_images(["cat.jpg", "dog.png"], model)
    ```
    """
    preprocessing = as_image_preprocessing(preprocessing)
    import os

    import numpy as np

    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No image file {path!r}.")
        try:
            fitted = fit_image(decode_rgb(tf.io.read_file(path)), preprocessing)
            images.append(tf.nest.map_structure(lambda part: part.numpy(), fitted))
        except tf.errors.InvalidArgumentError:
            raise ValueError(f"{path!r} is not a readable JPEG, PNG, GIF or BMP image.") from None
    return tf.nest.map_structure(lambda *parts: np.stack(parts), *images)
