"""Hugging Face's preprocessor_config.json, read into and written from a
model's `ImagePreprocessing`.

transformers' `CLIPImageProcessor` resizes the short side and crops the
centre (`size: {"shortest_edge"}`, `do_center_crop`): keras-clip's
"shortest"; with `size: {"height", "width"}` and no crop it squashes the
image to the square, as `SiglipImageProcessor` always does: "squash".
`Siglip2ImageProcessor` (`patch_size`, `max_num_patches`, no size) is
"naflex". "longest" (pad to the square) has no Hugging Face processor, so a
model that uses it is refused by name rather than written with another
resize.

Example:

```python
from keras_clip.models.preprocessing import ImagePreprocessing

config = processor_config(ImagePreprocessing(224), "CLIPImageProcessor")
config["size"]  # {"shortest_edge": 224}
```
"""

import os

from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.pretrained.files import read_json

PIL_RESAMPLE = {"bilinear": 2, "bicubic": 3}
_INTERPOLATIONS = {code: name for name, code in PIL_RESAMPLE.items()}


def read_processor(directory, default):
    """The `ImagePreprocessing` of a Hugging Face directory's
    preprocessor_config.json (image_size left to the model); `default`
    where the file, or one of its fields, is absent."""
    path = os.path.join(directory, "preprocessor_config.json")
    if not os.path.exists(path):
        return default
    processor = read_json(path)
    resample = processor.get("resample", PIL_RESAMPLE[default.interpolation])
    if resample not in _INTERPOLATIONS:
        raise ValueError(f"{path}: resample={resample} is not bilinear (2) or bicubic (3).")
    size = processor.get("size") or {}
    resize_mode = default.resize_mode
    naflex = {}
    if default.is_naflex:
        naflex = {
            "patch_size": processor.get("patch_size", default.patch_size),
            "max_num_patches": processor.get("max_num_patches", default.max_num_patches),
        }
    elif "shortest_edge" in size:
        resize_mode = "shortest"
    elif "height" in size and not processor.get("do_center_crop", False):
        resize_mode = "squash"
    return ImagePreprocessing(
        None,
        processor.get("image_mean", default.mean),
        processor.get("image_std", default.std),
        resize_mode,
        _INTERPOLATIONS[resample],
        **naflex,
    )


def processor_config(preprocessing, image_processor_type):
    """preprocessor_config.json for a model with `preprocessing` (which has
    its image_size), for transformers' `image_processor_type`."""
    size = preprocessing.image_size
    siglip = image_processor_type == "SiglipImageProcessor"
    allowed = {"SiglipImageProcessor": ("squash",), "Siglip2ImageProcessor": ("naflex",)}
    if preprocessing.resize_mode not in allowed.get(image_processor_type, ("shortest", "squash")):
        raise ValueError(
            f"resize_mode {preprocessing.resize_mode!r} has no {image_processor_type}: "
            "save with format='open_clip', or give the model another resize_mode."
        )
    config = {
        "image_processor_type": image_processor_type,
        "image_mean": list(preprocessing.mean),
        "image_std": list(preprocessing.std),
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "resample": PIL_RESAMPLE[preprocessing.interpolation],
    }
    if preprocessing.is_naflex:
        return {
            **config,
            "patch_size": preprocessing.patch_size,
            "max_num_patches": preprocessing.max_num_patches,
        }
    if preprocessing.resize_mode == "shortest":
        return {
            **config,
            "size": {"shortest_edge": size},
            "do_center_crop": True,
            "crop_size": {"height": size, "width": size},
        }
    config["size"] = {"height": size, "width": size}
    return config if siglip else {**config, "do_center_crop": False}
