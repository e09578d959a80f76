"""open_clip's Swin CLIP (`swin_base_patch4_window7_224`): timm's `swin_*`
image tower with open_clip's bias-free linear projection, beside CLIP's
text tower.

open_clip builds it as a plain `CLIP` whose `visual` is a `TimmModel`:
timm's `SwinTransformer` without classifier (its final LayerNorm and average
pool kept, as `timm_pool=""` leaves them), then a bias-free Linear to
`embed_dim`. `TIMM_SWIN_SHAPES` gives each timm name's stages, as timm's
model functions set them (`tests/test_open_clip_swin.py` checks them
against timm's models).

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_swin_config(open_clip_architectures()["swin_base_patch4_window7_224"])
shape["swin"]["depths"], shape["swin"]["num_heads"]  # (2, 2, 18, 2), (4, 8, 16, 32)
```
"""

import re

from keras_clip.models.open_clip_timm import check_timm_config
from keras_clip.models.open_clip_timm import clip_text_shape
from keras_clip.models.open_clip_timm import refuse_timm_option

# timm's Swin sizes: (first stage's width, blocks per stage, heads per stage).
TIMM_SWIN_SHAPES = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
_NAME = re.compile(r"swin_(?P<size>\w+?)_patch(?P<patch>\d+)_window(?P<window>\d+)_(?P<res>\d+)$")


def parse_swin_name(timm_model_name):
    """(size, patch, window, resolution) of a timm Swin name, or None."""
    match = _NAME.match(timm_model_name or "")
    if match is None or match["size"] not in TIMM_SWIN_SHAPES:
        return None
    return match["size"], int(match["patch"]), int(match["window"]), int(match["res"])


def is_open_clip_swin(config):
    """Whether an open_clip model config has a timm Swin image tower."""
    return parse_swin_name((config.get("vision_cfg") or {}).get("timm_model_name")) is not None


def from_open_clip_swin_config(config, sizes=None):
    """Shape fields of a Swin open_clip config; every key is checked.

    Args:
        config: the model config.
        sizes: (width, depths, heads) of the image tower as a checkpoint's
            tensors give them; None: the timm name's.

    Raises:
        ValueError: naming the first option keras-clip cannot build exactly.
    """
    if config.get("custom_text"):
        refuse_timm_option("Swin", "custom_text", True, "a plain CLIP")
    vision = check_timm_config(config, "Swin", pools=("",), projections=("linear",))
    if vision.get("timm_proj_bias"):
        refuse_timm_option("Swin", "vision_cfg.timm_proj_bias", True, "no head bias")
    name = vision["timm_model_name"]
    size, patch, window, resolution = parse_swin_name(name)
    if vision.get("image_size", 224) != resolution:
        refuse_timm_option(
            "Swin",
            "vision_cfg.image_size",
            vision.get("image_size", 224),
            f"{name} at {resolution}",
        )
    width, depths, heads = sizes or TIMM_SWIN_SHAPES[size]
    return dict(
        vision="swin",
        timm_model_name=name,
        image_size=resolution,
        swin={
            "patch_size": patch,
            "width": width,
            "depths": tuple(depths),
            "num_heads": tuple(heads),
            "window": window,
        },
        **clip_text_shape(config),
    )
