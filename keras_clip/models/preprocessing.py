"""Image normalisation with CLIP's constants (NumPy; no TensorFlow)."""

import numpy as np

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# How evaluation fits an image to the model's square (open_clip's
# preprocess_cfg "resize_mode" and "interpolation"); see
# `keras_clip.data.images.fit_to_square`.
RESIZE_MODES = ("shortest", "squash", "longest")
INTERPOLATIONS = ("bicubic", "bilinear")


def normalize_images(images, mean=OPENAI_MEAN, std=OPENAI_STD):
    """uint8 RGB images (..., H, W, 3) -> float32 (x / 255 - mean) / std.

    Args:
        images: uint8 array (..., height, width, 3).
        mean: 3 floats, per-channel mean on the [0, 1] scale.
        std: 3 floats, per-channel standard deviation.

    Example:

    ```python
    normalize_images(np.zeros((2, 64, 64, 3), "uint8")).dtype  # float32
    ```
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"normalize_images expects uint8 RGB images, got {images.dtype}.")
    if images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"normalize_images expects (..., height, width, 3), got {images.shape}.")
    scaled = images.astype("float32") / 255.0
    return (scaled - np.asarray(mean, "float32")) / np.asarray(std, "float32")


def image_constants(mean=None, std=None):
    """(mean, std) as 3-tuples of floats, OpenAI's where None; raises
    ValueError unless each has 3 values and the deviations are positive."""
    mean = tuple(float(x) for x in (mean or OPENAI_MEAN))
    std = tuple(float(x) for x in (std or OPENAI_STD))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(
            "image_mean and image_std need 3 values each, the standard "
            f"deviations positive; got {mean} and {std}."
        )
    return mean, std


def images_for_model(model, images):
    """uint8 RGB images normalised with `model`'s own constants (a
    checkpoint's, when it came from `CLIP.from_pretrained`); float images
    are returned as they are, taken to be normalised already."""
    if getattr(images, "dtype", None) != np.uint8:
        return images
    return normalize_images(
        images, getattr(model, "image_mean", OPENAI_MEAN), getattr(model, "image_std", OPENAI_STD)
    )


def check_resizing(resize_mode, interpolation):
    """Raises ValueError naming an unknown resize mode or interpolation."""
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"Unknown resize_mode {resize_mode!r}; expected one of {RESIZE_MODES}.")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Unknown interpolation {interpolation!r}; expected one of {INTERPOLATIONS}."
        )


def image_fitting(model):
    """`{"resize_mode", "interpolation"}` a model's images are fitted with
    (its checkpoint's; OpenAI's "shortest" and "bicubic" by default)."""
    return {
        "resize_mode": getattr(model, "image_resize_mode", "shortest"),
        "interpolation": getattr(model, "image_interpolation", "bicubic"),
    }
