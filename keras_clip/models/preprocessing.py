"""`ImagePreprocessing`: how images become a model's input, owned by the model.

One object says it whole: the square side the image tower takes, how an
image is fitted to that square, and the per-channel normalisation. A model
owns one (`model.image_preprocessing`: OpenAI's CLIP settings by default, a
checkpoint's own after `CLIP.from_pretrained`); it is saved with the model
(`.keras`, SavedModel, `save_pretrained`) and taken whole by the data
pipeline, zero-shot, retrieval, export and the CLI, so nobody copies a mean,
a standard deviation or a resize mode by hand. (NumPy; no TensorFlow: the
in-graph resizing lives in `keras_clip.data.images`.)
"""

import dataclasses

import numpy as np

from keras_clip.utils.checks import check_patch_grids
from keras_clip.utils.checks import image_batch

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# How an image is fitted to the square (open_clip's preprocess_cfg
# "resize_mode" and "interpolation"); see `keras_clip.data.images.fit_to_square`.
RESIZE_MODES = ("shortest", "squash", "longest", "naflex")
INTERPOLATIONS = ("bicubic", "bilinear")


@dataclasses.dataclass(frozen=True)
class ImagePreprocessing:
    """How a model's images are prepared.

    Args:
        image_size: int or None. The side of the square the image tower
            takes (None until the model fills it in: `model.image_preprocessing`
            always has it).
        mean: 3 floats, the per-channel mean on the [0, 1] scale (OpenAI's).
        std: 3 floats, the per-channel standard deviation, positive.
        resize_mode: how an image is fitted to the square: "shortest" (short
            side to the square, centre crop: OpenAI), "squash" (SigLIP) or
            "longest" (long side, padded), as open_clip's preprocess_cfg; or
            "naflex" (SigLIP 2 NaFlex: no square; the aspect ratio kept, the
            image resized to at most `max_num_patches` patches of
            `patch_size`, see `keras_clip.data.naflex`).
        interpolation: "bicubic" (OpenAI) or "bilinear" (SigLIP).
        patch_size: int, "naflex" only: the side of a patch in pixels.
        max_num_patches: int, "naflex" only: the patch budget of an image
            (its patch sequence is padded to this length); the same model
            takes other budgets (`with_budget`).

    Example:

    ```python
    siglip = ImagePreprocessing(224, (0.5,) * 3, (0.5,) * 3, "squash", "bilinear")
    siglip.normalize(np.zeros((2, 224, 224, 3), "uint8")).dtype  # float32
    ImagePreprocessing.from_config(siglip.get_config()) == siglip  # True
    ```
    """

    image_size: int = None
    mean: tuple = OPENAI_MEAN
    std: tuple = OPENAI_STD
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    patch_size: int = None
    max_num_patches: int = None

    def __post_init__(self):
        mean = tuple(float(x) for x in self.mean)
        std = tuple(float(x) for x in self.std)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(
                "An image mean and std need 3 values each, the standard "
                f"deviations positive; got {mean} and {std}."
            )
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"Unknown resize_mode {self.resize_mode!r}; expected one of {RESIZE_MODES}."
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"Unknown interpolation {self.interpolation!r}; expected one of {INTERPOLATIONS}."
            )
        naflex = (self.patch_size, self.max_num_patches)
        if self.is_naflex != all(isinstance(n, int) and n > 0 for n in naflex) or (
            not self.is_naflex and naflex != (None, None)
        ):
            raise ValueError(
                "resize_mode='naflex' needs a positive patch_size and max_num_patches, "
                f"and other modes neither; got resize_mode={self.resize_mode!r}, "
                f"patch_size={self.patch_size!r}, max_num_patches={self.max_num_patches!r}."
            )
        size = self.image_size
        if size is not None and (isinstance(size, bool) or int(size) != size or size <= 0):
            raise ValueError(f"image_size must be a positive integer, got {size!r}.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "image_size", None if size is None else int(size))

    def with_size(self, image_size):
        """The same settings for images of side `image_size`."""
        return dataclasses.replace(self, image_size=image_size)

    @property
    def is_naflex(self):
        """Whether images keep their aspect ratio as NaFlex patch sequences."""
        return self.resize_mode == "naflex"

    def with_budget(self, max_num_patches):
        """The same NaFlex settings with another patch budget."""
        if not self.is_naflex:
            raise ValueError("with_budget applies to resize_mode='naflex' only.")
        return dataclasses.replace(self, max_num_patches=max_num_patches)

    @property
    def fitting(self):
        """`{"resize_mode", "interpolation"}`: how images are fitted to the square."""
        return {"resize_mode": self.resize_mode, "interpolation": self.interpolation}

    def normalize(self, images):
        """uint8 RGB images (..., H, W, 3) -> float32 (x / 255 - mean) / std;
        for NaFlex, a dict of uint8 "patches" and "spatial_shapes" -> the
        same dict with the patches normalised and the padding zero."""
        if isinstance(images, dict):
            return self._normalize_patches(images)
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"normalize expects uint8 RGB images, got {images.dtype}.")
        if images.ndim < 3 or images.shape[-1] != 3:
            raise ValueError(f"normalize expects (..., height, width, 3), got {images.shape}.")
        scaled = images.astype("float32") / 255.0
        return (scaled - np.asarray(self.mean, "float32")) / np.asarray(self.std, "float32")

    def _normalize_patches(self, images):
        check_patch_grids(images)
        patches = np.asarray(images["patches"])
        spatial_shapes = np.asarray(images["spatial_shapes"])
        pixels = self.normalize(patches.reshape(patches.shape[:-1] + (-1, 3)))
        real = np.arange(patches.shape[-2]) < np.prod(spatial_shapes, axis=-1)[..., None]
        pixels = pixels * real[..., None, None]
        return {"patches": pixels.reshape(patches.shape), "spatial_shapes": spatial_shapes}

    def get_config(self):
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize_mode": self.resize_mode,
            "interpolation": self.interpolation,
            # (older configs have no patch fields: they appear for NaFlex only)
            **(
                {"patch_size": self.patch_size, "max_num_patches": self.max_num_patches}
                if self.is_naflex
                else {}
            ),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def as_image_preprocessing(preprocessing):
    """An `ImagePreprocessing` with its size, from one, from a model (its
    own), or from an int (OpenAI's CLIP settings at that size: for models
    trained from scratch)."""
    if hasattr(preprocessing, "image_preprocessing"):
        preprocessing = preprocessing.image_preprocessing
    elif isinstance(preprocessing, int) and not isinstance(preprocessing, bool):
        preprocessing = ImagePreprocessing(preprocessing)
    if not isinstance(preprocessing, ImagePreprocessing):
        raise ValueError(
            "Expected a model, its image_preprocessing or an image size (int), "
            f"got {preprocessing!r}."
        )
    if preprocessing.image_size is None and not preprocessing.is_naflex:
        raise ValueError("The ImagePreprocessing has no image_size: use .with_size(n).")
    return preprocessing


def images_for_model(model, images):
    """uint8 RGB images normalised with `model`'s own preprocessing (a
    checkpoint's, when it came from `CLIP.from_pretrained`); float images
    are returned as they are, taken to be normalised already. A NaFlex
    dict's uint8 patches are normalised likewise."""
    if getattr(image_batch(images), "dtype", None) != np.uint8:
        return images
    return model.image_preprocessing.normalize(images)


def image_rows(images, rows):
    """`images[rows]` of an array or of each part of a NaFlex dict."""
    if isinstance(images, dict):
        return {key: value[rows] for key, value in images.items()}
    return images[rows]


def image_count(images):
    """The number of images in an array or a NaFlex dict of them."""
    return len(image_batch(images))


# The four model arguments that held the preprocessing before 0.3.
_FORMER_ARGUMENTS = {
    "image_mean": "mean",
    "image_std": "std",
    "image_resize_mode": "resize_mode",
    "image_interpolation": "interpolation",
}


def upgrade_preprocessing_config(config):
    """A model config with the former `image_mean`, `image_std`,
    `image_resize_mode` and `image_interpolation` arguments (models saved
    before 0.3) gathered into `image_preprocessing`."""
    config = dict(config)
    former = {new: config.pop(old) for old, new in _FORMER_ARGUMENTS.items() if old in config}
    former = {key: value for key, value in former.items() if value is not None}
    if former:
        config["image_preprocessing"] = {**former, **(config.get("image_preprocessing") or {})}
    return config
