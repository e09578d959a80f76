"""What open_clip's models with a timm image tower share: the `vision_cfg`
keys a timm tower takes (each checked or refused by name), and CLIP's text
tower beside it (its shape fields, checked like any open_clip text tower).
The towers' own rules live in `timm_eva`, `timm_convnext` and `timm_fastvit`.

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

config = open_clip_architectures()["MobileCLIP2-S0"]
check_timm_config(config, "FastViT", pools=("avg",), projections=(None,))
clip_text_shape(config)["text_causal"]  # False: MobileCLIP 2's text attends both ways
```
"""

from keras_clip.models.open_clip_options import check_open_clip_section
from keras_clip.models.open_clip_options import open_clip_text_fields

TIMM_VISION_KEYS = {"image_size", "timm_model_name", "timm_model_pretrained", "timm_pool"}
TIMM_VISION_KEYS |= {"timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"}


def refuse_timm_option(family, key, value, expected):
    raise ValueError(
        f"open_clip option {key}={value!r} is not supported for a {family} model "
        f"(keras-clip builds {expected}): the model would load but compute something else."
    )


def check_timm_config(config, family, pools, projections):
    """Checks the top-level keys and `vision_cfg` of a timm-tower config.

    Args:
        config: the open_clip model config.
        family: str naming the tower in errors ("ConvNeXt", ...).
        pools: the `timm_pool` values the tower is built for.
        projections: the `timm_proj` values it is built for (None for
            timm's own head: null or "").

    Returns:
        The `vision_cfg` dict.
    """
    vision = config.get("vision_cfg") or {}
    top = {k: v for k, v in config.items() if k not in ("custom_text", "vision_cfg", "text_cfg")}
    check_open_clip_section("top", top)
    for key, value in vision.items():
        if key not in TIMM_VISION_KEYS:
            refuse_timm_option(family, f"vision_cfg.{key}", value, "the timm tower its name gives")
    pool = vision.get("timm_pool", "avg")
    if pool not in pools:
        refuse_timm_option(family, "vision_cfg.timm_pool", pool, f"timm_pool in {list(pools)}")
    projection = vision.get("timm_proj", "linear") or None
    if projection not in projections:
        refuse_timm_option(
            family, "vision_cfg.timm_proj", projection, f"timm_proj in {list(projections)}"
        )
    return vision


def clip_text_shape(config):
    """The joint width, CLIP's text tower and the logit bias of an open_clip
    config, as shape fields; every `text_cfg` key is checked."""
    text = config.get("text_cfg") or {}
    check_open_clip_section("text", text)
    return dict(
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
