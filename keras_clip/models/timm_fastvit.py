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

from keras_clip.models.open_clip_options import check_open_clip_section
from keras_clip.models.open_clip_options import open_clip_text_fields

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
_VISION_KEYS = {"image_size", "timm_model_name", "timm_model_pretrained", "timm_pool"}
_VISION_KEYS |= {"timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"}


def fastvit_variant(timm_model_name):
    """The MCi variant ("mci0" ... "mci4") of a timm FastViT name, or None.
    A name with a suffix ("fastvit_mci0_tiny") is a variant's layout at
    other sizes (read from a checkpoint)."""
    match = _NAME.match(timm_model_name or "")
    return match.group(1) if match and match.group(1) in TIMM_FASTVIT_SHAPES else None


def is_open_clip_fastvit(config):
    vision = config.get("vision_cfg") or {}
    return bool(config.get("custom_text")) and fastvit_variant(vision.get("timm_model_name"))


def _refuse(key, value, expected):
    raise ValueError(
        f"open_clip option {key}={value!r} is not supported for a FastViT model "
        f"(keras-clip builds {expected}): the model would load but compute something else."
    )


def from_open_clip_fastvit_config(config, sizes=None):
    """Shape fields of a FastViT open_clip config; every key is checked.

    Args:
        config: the model config.
        sizes: dict of `FastViT` arguments read off a checkpoint (depths,
            dims, mlp_ratios, se_widths); None: the variant's.
    """
    vision, text = config.get("vision_cfg") or {}, config.get("text_cfg") or {}
    top = {k: v for k, v in config.items() if k not in ("custom_text", "vision_cfg", "text_cfg")}
    check_open_clip_section("top", top)
    for key, value in vision.items():
        if key not in _VISION_KEYS:
            _refuse(f"vision_cfg.{key}", value, "the timm tower its name gives")
    if vision.get("timm_pool", "avg") != "avg":
        _refuse("vision_cfg.timm_pool", vision["timm_pool"], "average pooling")
    if vision.get("timm_proj", "linear"):
        _refuse("vision_cfg.timm_proj", vision.get("timm_proj", "linear"), "timm's head, null")
    image_size = vision.get("image_size", 224)
    if image_size % 32:
        _refuse("vision_cfg.image_size", image_size, "sides that are multiples of 32")
    check_open_clip_section("text", text)
    name = vision["timm_model_name"]
    tower = {**TIMM_FASTVIT_SHAPES[fastvit_variant(name)], **(sizes or {})}
    return dict(
        vision="fastvit",
        timm_model_name=name,
        image_size=image_size,
        fastvit=tower,
        embed_dim=config["embed_dim"],
        context_length=text.get("context_length", 77),
        vocabulary_size=text.get("vocab_size", 49408),
        text_width=text["width"],
        text_heads=text["heads"],
        text_layers=text["layers"],
        text_mlp_ratio=text.get("mlp_ratio", 4.0),
        activation="quick_gelu" if config.get("quick_gelu") else "gelu",
        **open_clip_text_fields(text),
        logit_bias=config.get("init_logit_bias"),
    )
