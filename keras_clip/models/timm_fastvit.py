"""open_clip's MobileCLIP and MobileCLIP 2 models with FastViT towers
(`MobileCLIP-S1`, `MobileCLIP2-S0` ... `-S4`): timm's `fastvit_mci0` ...
`fastvit_mci4` beside CLIP's (bidirectional) text tower.

open_clip builds them as a `CustomTextCLIP` whose image tower is timm's
FastViT with its classifier head as the projection (`timm_proj=null`,
`timm_pool="avg"`). `TIMM_FASTVIT_SHAPES` gives each MCi variant's stages
as timm's model functions set them (`tests/test_open_clip_fastvit.py`
checks them against timm's models).

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_fastvit_config(open_clip_architectures()["MobileCLIP2-S0"])
shape["fastvit"]["dims"]  # [64, 128, 256, 512]
```
"""

import re

from keras_clip.models.open_clip_timm import check_timm_config
from keras_clip.models.open_clip_timm import clip_text_shape
from keras_clip.models.open_clip_timm import refuse_timm_option

_MCI_SMALL = dict(
    mlp_ratios=[3] * 4,
    token_mixers=["repmixer"] * 3 + ["attention"],
    downsamples=[False, True, True, True],
    se_downsamples=[False, False, True, True],
    position_encodings=[False, False, False, True],
    attention_norm="batch",
    stem_scale_branch=True,
)
_MCI_LARGE = dict(
    mlp_ratios=[4] * 5,
    token_mixers=["repmixer"] * 3 + ["attention"] * 2,
    downsamples=[False, True, True, True, True],
    se_downsamples=[False] * 5,
    position_encodings=[False, False, False, True, True],
    attention_norm="layer",
    stem_scale_branch=False,
)
# timm's MCi variants: their stages (depths, dims) and options.
TIMM_FASTVIT_SHAPES = {
    "mci0": dict(_MCI_SMALL, depths=[2, 6, 10, 2], dims=[64, 128, 256, 512]),
    "mci1": dict(_MCI_SMALL, depths=[4, 12, 20, 4], dims=[64, 128, 256, 512]),
    "mci2": dict(_MCI_SMALL, depths=[4, 12, 24, 4], dims=[80, 160, 320, 640]),
    "mci3": dict(_MCI_LARGE, depths=[2, 12, 24, 4, 2], dims=[96, 192, 384, 768, 1536]),
    "mci4": dict(_MCI_LARGE, depths=[2, 12, 24, 4, 4], dims=[128, 256, 512, 1024, 2048]),
}
_NAME = re.compile(r"fastvit_(mci\d)(_\w+)?$")


def fastvit_variant(timm_model_name):
    """The MCi variant ("mci0" ... "mci4") of a timm FastViT name, or None.
    A name with a suffix ("fastvit_mci0_tiny") is a variant's layout at
    other sizes (read from a checkpoint)."""
    match = _NAME.match(timm_model_name or "")
    return match.group(1) if match and match.group(1) in TIMM_FASTVIT_SHAPES else None


def is_open_clip_fastvit(config):
    vision = config.get("vision_cfg") or {}
    return bool(config.get("custom_text")) and fastvit_variant(vision.get("timm_model_name"))


def from_open_clip_fastvit_config(config, sizes=None):
    """Shape fields of a FastViT open_clip config; every key is checked.

    Args:
        config: the model config.
        sizes: dict of `FastViT` arguments read off a checkpoint (depths,
            dims, mlp_ratios, se_widths); None: the variant's.
    """
    vision = check_timm_config(config, "FastViT", pools=("avg",), projections=(None,))
    image_size = vision.get("image_size", 224)
    if image_size % 32:
        refuse_timm_option(
            "FastViT", "vision_cfg.image_size", image_size, "sides that are multiples of 32"
        )
    name = vision["timm_model_name"]
    tower = {**TIMM_FASTVIT_SHAPES[fastvit_variant(name)], **(sizes or {})}
    return dict(
        vision="fastvit",
        timm_model_name=name,
        image_size=image_size,
        fastvit=tower,
        **clip_text_shape(config),
    )
