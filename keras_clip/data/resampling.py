"""PIL's antialiased bilinear resize of uint8 images, in TensorFlow, exactly.

`tf.image.resize(..., antialias=True)` computes in floating point; PIL (and
with it transformers' processors) computes 8-bit images with fixed-point
filter coefficients (22 fractional bits) and rounds to 8 bits after each
of its two passes. Rounded differently, about one pixel in six comes out
one level off PIL's. This module repeats PIL's arithmetic: the same
coefficients (float64, as PIL's doubles), the same fixed-point sums (int64),
the same rounding and the same order of passes (Pillow 13 runs the vertical
pass first when the height shrinks by more than twice as many pixels as the
width, python-pillow/Pillow#9549; horizontal first otherwise, as before),
so its pixels are PIL's bit for bit (checked against Pillow 13.0 in
tests/test_naflex.py).

Example:

```python
image = tf.zeros([480, 640, 3], tf.uint8)
resized = pil_bilinear_resize(image, [224, 288])  # uint8 (224, 288, 3), PIL's pixels
```
"""

import tensorflow as tf

_PRECISION_BITS = 22  # PIL's 8-bit resampling precision (32 - 8 - 2)


def _coefficients(in_size, out_size):
    """PIL's bilinear taps for one axis: source indices (out, taps) and
    fixed-point weights (out, taps), weights 0 beyond each window."""
    in_float = tf.cast(in_size, tf.float64)
    scale = in_float / tf.cast(out_size, tf.float64)
    filter_scale = tf.maximum(scale, 1.0)
    support = filter_scale  # the triangle filter's support is 1, widened when shrinking
    taps = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    centre = (tf.cast(tf.range(out_size), tf.float64) + 0.5) * scale
    first = tf.maximum(tf.math.floor(centre - support + 0.5), 0.0)
    last = tf.minimum(tf.math.floor(centre + support + 0.5), in_float)
    index = first[:, None] + tf.cast(tf.range(taps), tf.float64)[None, :]
    distance = tf.abs((index - centre[:, None] + 0.5) * (1.0 / filter_scale))
    weights = tf.where(index < last[:, None], tf.maximum(1.0 - distance, 0.0), 0.0)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    fixed = tf.cast(tf.math.floor(0.5 + weights * 2.0**_PRECISION_BITS), tf.int64)
    index = tf.cast(tf.minimum(index, in_float - 1.0), tf.int32)
    return index, fixed


def _resample_axis(image, out_size, axis):
    """One pass of PIL's resampling along `axis` (0: rows, 1: columns) of an
    int64 (height, width, channels) image, rounded and clipped to 0..255."""
    index, weights = _coefficients(tf.shape(image)[axis], out_size)
    gathered = tf.gather(image, index, axis=axis)  # axis -> (out, taps)
    weights = weights[:, :, None, None] if axis == 0 else weights[None, :, :, None]
    sums = tf.reduce_sum(gathered * weights, axis=axis + 1)
    rounded = tf.bitwise.right_shift(sums + 2 ** (_PRECISION_BITS - 1), _PRECISION_BITS)
    return tf.clip_by_value(rounded, 0, 255)


def pil_bilinear_resize(image, size):
    """Resizes uint8 (height, width, channels) to `size` as PIL's
    `Image.resize(size, Image.BILINEAR)` does, bit for bit.

    Args:
        image: uint8 (height, width, channels).
        size: (height, width), ints or an int32 tensor.

    Returns:
        uint8 (size[0], size[1], channels).
    """
    pixels = tf.cast(image, tf.int64)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    rows_lost, columns_lost = height - size[0], width - size[1]

    def passes(axes):
        resized = pixels
        for axis in axes:
            resized = _resample_axis(resized, size[axis], axis)
        return resized

    vertical_first = (rows_lost > 0) & (2 * columns_lost < rows_lost)
    resized = tf.cond(vertical_first, lambda: passes((0, 1)), lambda: passes((1, 0)))
    return tf.cast(resized, tf.uint8)


def antialiased_resize_to_uint8(image, size, interpolation="bicubic"):
    """uint8 `image` resized to `size` with TensorFlow's antialiased
    "bicubic" or "bilinear" kernel in float, rounded (within a level or so
    of PIL's pixels)."""
    resized = tf.image.resize(image, size, method=interpolation, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def resized_to_uint8(image, size, interpolation="bilinear"):
    """uint8 `image` resized to `size`: "bilinear" exactly as PIL
    (`pil_bilinear_resize`), "bicubic" as `antialiased_resize_to_uint8`."""
    if interpolation == "bilinear":
        return pil_bilinear_resize(image, size)
    return antialiased_resize_to_uint8(image, size, interpolation)
