"""open_clip's ConvNeXt CLIPs (`convnext_base_w`, `convnext_large_d`, ...):
timm's `convnext_*` image tower with open_clip's projection head, beside
CLIP's text tower.

open_clip builds them as a plain `CLIP` whose `visual` is a `TimmModel`:
timm's ConvNeXt without classifier (average pool and head LayerNorm kept,
as `timm_pool=""` leaves them), then a bias-free Linear ("linear") or a
GELU MLP ("mlp") to `embed_dim`. `TIMM_CONVNEXT_SHAPES` gives each timm
name's stages, as timm's model functions set them
(`tests/test_open_clip_convnext.py` checks them against timm's models).

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_convnext_config(open_clip_architectures()["convnext_base_w"])
shape["convnext_dims"], shape["vision_head"]  # (128, 256, 512, 1024), "linear"
```
"""

import re

from keras_clip.models.open_clip_timm import check_timm_config
from keras_clip.models.open_clip_timm import clip_text_shape
from keras_clip.models.open_clip_timm import refuse_timm_option

# timm's ConvNeXt sizes: (blocks per stage, channels per stage, LayerNorm epsilon).
TIMM_CONVNEXT_SHAPES = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 1e-6),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768), 1e-6),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024), 1e-6),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536), 1e-6),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048), 1e-6),
    "xxlarge": ((3, 4, 30, 3), (384, 768, 1536, 3072), 1e-5),
}
_NAME = re.compile(r"convnext_(\w+)$")


def convnext_size(timm_model_name):
    """The size word of a timm ConvNeXt name (tiny ... xxlarge), or None."""
    match = _NAME.match(timm_model_name or "")
    return match.group(1) if match and match.group(1) in TIMM_CONVNEXT_SHAPES else None


def is_open_clip_convnext(config):
    """Whether an open_clip model config has a timm ConvNeXt image tower."""
    vision = config.get("vision_cfg") or {}
    return convnext_size(vision.get("timm_model_name")) is not None


def from_open_clip_convnext_config(config, sizes=None):
    """Shape fields of a ConvNeXt open_clip config; every key is checked.

    Args:
        config: the model config.
        sizes: (depths, dims) of the image tower as a checkpoint's tensors
            give them; None: the timm name's.

    Raises:
        ValueError: naming the first option keras-clip cannot build exactly.
    """
    vision = check_timm_config(config, "ConvNeXt", pools=("", "avg"), projections=("linear", "mlp"))
    image_size = vision.get("image_size", 224)
    if image_size % 32:
        refuse_timm_option(
            "ConvNeXt", "vision_cfg.image_size", image_size, "sides that are multiples of 32"
        )
    name = vision["timm_model_name"]
    depths, dims, epsilon = TIMM_CONVNEXT_SHAPES[convnext_size(name)]
    if sizes is not None:
        depths, dims = sizes
    return dict(
        vision="convnext",
        timm_model_name=name,
        image_size=image_size,
        convnext_depths=tuple(depths),
        convnext_dims=tuple(dims),
        vision_head=vision.get("timm_proj", "linear"),
        vision_head_bias=bool(vision.get("timm_proj_bias", False)),
        vision_layer_norm_epsilon=epsilon,
        **clip_text_shape(config),
    )
