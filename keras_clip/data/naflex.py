"""SigLIP 2 NaFlex image preprocessing as TensorFlow ops.

An image keeps its aspect ratio: it is resized (antialiased bilinear) to
the largest grid of whole patches whose count stays within the budget
(`max_num_patches`), cut into patches in row order, each flattened in
(row, column, channel) order, and the sequence padded with zero patches to
the budget, so that every image of one budget has the same shape (one
compiled shape per budget for XLA). The grid search is transformers'
`Siglip2ImageProcessor`'s, step for step, and the bilinear resize PIL's,
bit for bit (`keras_clip.data.resampling`).

Example:

```python
preprocessing = ImagePreprocessing(None, (0.5,) * 3, (0.5,) * 3, "naflex", "bilinear", 16, 256)
receipt = tf.zeros([300, 1200, 3], tf.uint8)  # or decode_rgb(tf.io.read_file(...))
one = naflex_patches(receipt, preprocessing)  # (a model's: model.image_preprocessing)
one["spatial_shapes"]  # [8, 32]: 256 patches of 16 px, 1:4 kept
```
"""

import tensorflow as tf

from keras_clip.data.resampling import resized_to_uint8
from keras_clip.models.preprocessing import ImagePreprocessing

# transformers' binary search: the scale range and its stopping width.
_SEARCH_EPS = 1e-5
_SEARCH_RANGE = (_SEARCH_EPS / 10, 100.0)


def naflex_grid(height, width, patch_size, max_num_patches):
    """The (rows, columns) of patches an image of (height, width) pixels is
    resized to: the largest scale whose patch grid (each side rounded up to
    whole patches, at least one) holds at most `max_num_patches` patches,
    found by transformers' bisection in float64.

    Args:
        height, width: int scalars (tensors or numbers), the image's size.
        patch_size: int.
        max_num_patches: int.

    Returns:
        int32 (2,): rows and columns of patches.
    """
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    patch = tf.constant(patch_size, tf.float64)

    def patches_along(scale, size):
        return tf.maximum(tf.math.ceil(size * scale / patch), 1.0)

    def bisect(low, high):
        scale = (low + high) / 2
        fits = patches_along(scale, height) * patches_along(scale, width) <= max_num_patches
        return tf.where(fits, scale, low), tf.where(fits, high, scale)

    low, high = (tf.constant(bound, tf.float64) for bound in _SEARCH_RANGE)
    low, _ = tf.while_loop(lambda low, high: high - low >= _SEARCH_EPS, bisect, (low, high))
    return tf.cast(tf.stack([patches_along(low, height), patches_along(low, width)]), tf.int32)


def naflex_patches(image, preprocessing):
    """One image as a NaFlex patch sequence (uint8; `images.normalize`
    normalises batches of them).

    Args:
        image: uint8 (height, width, 3).
        preprocessing: a NaFlex `ImagePreprocessing` (resize_mode "naflex":
            its patch_size, max_num_patches and interpolation are used).

    Returns:
        dict: "patches" uint8 (max_num_patches, patch_size**2 * 3), the real
        patches first, then zeros; "spatial_shapes" int32 (2,), the
        (rows, columns) of real patches.
    """
    check_naflex(preprocessing)
    patch, budget = preprocessing.patch_size, preprocessing.max_num_patches
    shape = tf.shape(image)
    grid = naflex_grid(shape[0], shape[1], patch, budget)
    resized = resized_to_uint8(image, grid * patch, preprocessing.interpolation)
    rows, columns = grid[0], grid[1]
    patches = tf.reshape(resized, [rows, patch, columns, patch, 3])
    patches = tf.reshape(tf.transpose(patches, [0, 2, 1, 3, 4]), [rows * columns, -1])
    patches = tf.pad(patches, [[0, budget - rows * columns], [0, 0]])
    patches.set_shape([budget, patch * patch * 3])
    return {"patches": patches, "spatial_shapes": grid}


def check_naflex(preprocessing):
    if not isinstance(preprocessing, ImagePreprocessing) or not preprocessing.is_naflex:
        raise ValueError(
            "NaFlex preprocessing needs an ImagePreprocessing with resize_mode='naflex' "
            f"(a NaFlex model's image_preprocessing); got {preprocessing!r}."
        )
