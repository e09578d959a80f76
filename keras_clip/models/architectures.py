"""Named model shapes: ONE table for every entry point.

A name is either one of open_clip's built-in architectures ("ViT-B-32",
"ViT-B-32-quickgelu", "RN50", "ViT-H-14", ...: open_clip 3.3's model configs
whose options keras-clip builds exactly, shipped in
`open_clip_architectures.json`), read as open_clip reads them: a name ending
in "-quickgelu" has OpenAI's QuickGELU activation, any other name GELU. Or
it is one of keras-clip's CPU-sized shapes ("shapes-vit", "tiny-vit", ...),
each with its activation written in the table. `CLIP.from_architecture`,
`CLIP.from_pretrained(..., architecture=name)`, the CLI's `--architecture`
and the training recipes all resolve names here (`architecture_config`).

Example:

```python
config = architecture_config("ViT-B-32-quickgelu")
config["activation"]  # "quick_gelu"
architecture_config("tiny-vit", vocabulary_size=200)["vocabulary_size"]  # 200
```
"""

import contextlib
import functools
import json
import os

import keras

from keras_clip.encoders.convnext import ConvNeXt
from keras_clip.encoders.eva_vision import EVAVisionTransformer
from keras_clip.encoders.fastvit import FastViT
from keras_clip.encoders.m2m100_text import M2M100TextEncoder
from keras_clip.encoders.modified_resnet import ModifiedResNet
from keras_clip.encoders.roberta_text import RobertaTextEncoder
from keras_clip.encoders.siglip_vision import SigLIPVisionTransformer
from keras_clip.encoders.swin import SwinTransformer
from keras_clip.encoders.t5_text import T5TextEncoder
from keras_clip.encoders.text_transformer import TextTransformer
from keras_clip.encoders.vision_transformer import VisionTransformer
from keras_clip.models.hf_text import from_open_clip_hf_text_config
from keras_clip.models.open_clip_coca import build_coca
from keras_clip.models.open_clip_coca import coca_text_options
from keras_clip.models.open_clip_coca import coca_vision_options
from keras_clip.models.open_clip_coca import from_open_clip_coca_config
from keras_clip.models.open_clip_coca import is_open_clip_coca
from keras_clip.models.open_clip_options import from_open_clip_config
from keras_clip.models.open_clip_options import is_open_clip_hf_text
from keras_clip.models.open_clip_options import is_open_clip_siglip
from keras_clip.models.timm_convnext import from_open_clip_convnext_config
from keras_clip.models.timm_convnext import is_open_clip_convnext
from keras_clip.models.timm_eva import eva_tower_options
from keras_clip.models.timm_eva import from_open_clip_eva_config
from keras_clip.models.timm_eva import is_open_clip_eva
from keras_clip.models.timm_fastvit import from_open_clip_fastvit_config
from keras_clip.models.timm_fastvit import is_open_clip_fastvit
from keras_clip.models.timm_swin import from_open_clip_swin_config
from keras_clip.models.timm_swin import is_open_clip_swin

OPEN_CLIP_ARCHITECTURES = "open_clip_architectures.json"
# The Hugging Face text towers: the shape's "text" field -> the encoder.
HF_TEXT_ENCODERS = {"roberta": RobertaTextEncoder, "t5": T5TextEncoder, "m2m100": M2M100TextEncoder}

_SMALL_TEXT = dict(vocabulary_size=1000, context_length=32)
_TINY_TEXT = dict(
    text_width=32, text_layers=2, text_heads=2, vocabulary_size=100, context_length=16
)


def _vit(image_size, patch_size, width, layers, heads, embed_dim, **text):
    return dict(
        vision="vit",
        image_size=image_size,
        patch_size=patch_size,
        vision_width=width,
        vision_layers=layers,
        vision_heads=heads,
        embed_dim=embed_dim,
        activation="quick_gelu",
        **text,
    )


# === Config ===
# keras-clip's own CPU-sized shapes (the demo, benchmarks and tests).
KERAS_CLIP_ARCHITECTURES = {
    "shapes-vit": _vit(
        64, 8, 128, 4, 4, 128, text_width=128, text_layers=2, text_heads=4, **_SMALL_TEXT
    ),
    "bench-vit": _vit(
        64, 8, 192, 4, 3, 128, text_width=192, text_layers=4, text_heads=3, **_SMALL_TEXT
    ),
    "tiny-vit": _vit(32, 8, 32, 2, 2, 16, **_TINY_TEXT),
    "tiny-rn": dict(
        vision="resnet",
        stage_blocks=(1, 1, 1, 1),
        vision_width=8,
        vision_heads=4,
        image_size=64,
        embed_dim=16,
        activation="quick_gelu",
        **_TINY_TEXT,
    ),
}

SHAPE_FIELDS = set().union(*KERAS_CLIP_ARCHITECTURES.values()) | {
    "end_token_id",
    "vision_mlp_ratio",
    "text_mlp_ratio",
    "vision_layer_norm_epsilon",
    "text_layer_norm_epsilon",
    "logit_bias",
    "timm_model_name",
    "vision_mlp_hidden",
    "text_causal",
    "text_pooling",
    "text_layer_scale",
    "vision_pre_norm",
    "vision_pooling",
    "vision_norm_after_pool",
    "vision_layer_scale",
    "convnext_depths",
    "convnext_dims",
    "swin",
    "vision_head",
    "vision_head_bias",
    "fastvit",
    "text",
    "roberta",
    "t5",
    "m2m100",
    "vision_relative_position_hidden",
    "vision_vitamin_stem",
    "coca",
}


@functools.cache
def _open_clip_table():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), OPEN_CLIP_ARCHITECTURES)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def open_clip_architectures():
    """open_clip's built-in model configs whose options keras-clip builds
    exactly (name -> config dict, a fresh copy), as open_clip 3.3 ships them
    in `open_clip/model_configs/`; SigLIP ones included (their timm image
    tower takes its shape from a checkpoint)."""
    return json.loads(json.dumps(_open_clip_table()))


def architecture_names():
    """Every name `architecture_config` resolves: keras-clip's, then open_clip's."""
    return list(KERAS_CLIP_ARCHITECTURES) + sorted(_open_clip_table())


def architecture_config(name, **overrides):
    """The shape fields of a named architecture, with `overrides` applied.

    Args:
        name: an open_clip architecture name or a keras-clip one
            (`architecture_names()`).
        **overrides: shape fields to change (image_size, vocabulary_size,
            activation, ...).

    Raises:
        ValueError: for an unknown name, or an open_clip SigLIP name (its
            shape comes with a checkpoint: `CLIP.from_pretrained`).
    """
    if name in KERAS_CLIP_ARCHITECTURES:
        return {**KERAS_CLIP_ARCHITECTURES[name], **overrides}
    config = _open_clip_table().get(name)
    if config is None:
        raise ValueError(
            f"Unknown architecture {name!r}. Available: keras-clip's "
            f"{sorted(KERAS_CLIP_ARCHITECTURES)} and open_clip's {sorted(_open_clip_table())}."
        )
    if is_open_clip_siglip(config):
        raise ValueError(
            f"{name} is an open_clip SigLIP architecture, whose timm image tower "
            "takes its shape from a checkpoint: load one with "
            f"CLIP.from_pretrained(path, architecture={name!r}), or build SigLIP "
            "towers with keras_clip.encoders.SigLIPVisionTransformer and "
            "SigLIPTextTransformer."
        )
    if is_open_clip_coca(config):
        return {**from_open_clip_coca_config(config), **overrides}
    if is_open_clip_eva(config):
        return {**from_open_clip_eva_config(config), **overrides}
    if is_open_clip_convnext(config):
        return {**from_open_clip_convnext_config(config), **overrides}
    if is_open_clip_swin(config):
        return {**from_open_clip_swin_config(config), **overrides}
    if is_open_clip_fastvit(config):
        return {**from_open_clip_fastvit_config(config), **overrides}
    if is_open_clip_hf_text(config):
        return {**from_open_clip_hf_text_config(config), **overrides}
    return {**from_open_clip_config(config), **overrides}


# === Building ===
def build_architecture(model_class, name, **overrides):
    """Builds `model_class` (CLIP or CLIPLite) with a named shape; `overrides`
    holds shape fields and model arguments (objective, dtype, ...)."""
    shape_overrides = {k: v for k, v in overrides.items() if k in SHAPE_FIELDS}
    model_kwargs = {k: v for k, v in overrides.items() if k not in SHAPE_FIELDS}
    return build_from_shape(
        model_class, architecture_config(name, **shape_overrides), **model_kwargs
    )


@contextlib.contextmanager
def dtype_policy_scope(dtype):
    """Every layer created inside takes `dtype` (a policy name such as
    "mixed_bfloat16"; None: no change), the towers included: a `dtype`
    given to the model alone would leave the towers at the global policy."""
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_from_shape(model_class, config, **model_kwargs):
    """Builds `model_class` from shape fields (as `architecture_config`
    returns them), under the dtype policy of `model_kwargs["dtype"]`. A
    shape with a logit bias (open_clip's `init_logit_bias`) is a sigmoid
    model: its objective defaults to SigLIP's loss."""
    if config.get("logit_bias") is not None:
        from keras_clip.objectives import SigLIPLoss

        model_kwargs.setdefault("objective", SigLIPLoss())
    with dtype_policy_scope(model_kwargs.get("dtype")):
        return _build(model_class, config, model_kwargs)


def _build(model_class, config, model_kwargs):
    activation = config["activation"]
    if config["vision"] == "vit":
        image_encoder = VisionTransformer(
            config["image_size"],
            config["patch_size"],
            config["vision_width"],
            config["vision_layers"],
            config["vision_heads"],
            mlp_ratio=config.get("vision_mlp_ratio", 4.0),
            activation=activation,
            layer_norm_epsilon=config.get("vision_layer_norm_epsilon", 1e-5),
            pre_norm=config.get("vision_pre_norm", True),
            pooling=config.get("vision_pooling", "token"),
            norm_after_pool=config.get("vision_norm_after_pool", False),
            layer_scale_init=config.get("vision_layer_scale"),
            name="image_encoder",
            **coca_vision_options(config),
        )
    elif config["vision"] == "eva":
        # timm's EVA towers project to embed_dim in their head.
        options = eva_tower_options(config["timm_model_name"])
        if config.get("vision_relative_position_hidden"):  # a checkpoint's own width
            options["relative_position_hidden"] = config["vision_relative_position_hidden"]
        if config.get("vision_vitamin_stem"):  # a checkpoint's own stem
            options["vitamin_stem"] = config["vision_vitamin_stem"]
        image_encoder = EVAVisionTransformer(
            config["image_size"],
            config["patch_size"],
            config["vision_width"],
            config["vision_layers"],
            output_dim=config["embed_dim"],
            mlp_hidden=config["vision_mlp_hidden"],
            timm_model_name=config["timm_model_name"],
            name="image_encoder",
            **options,
        )
        model_kwargs.setdefault("project_image", False)
    elif config["vision"] == "fastvit":
        # timm's FastViT head projects to embed_dim.
        image_encoder = FastViT(
            config["image_size"],
            output_dim=config["embed_dim"],
            timm_model_name=config["timm_model_name"],
            name="image_encoder",
            **config["fastvit"],
        )
        model_kwargs.setdefault("project_image", False)
    elif config["vision"] == "swin":
        # timm's Swin with open_clip's bias-free linear head projects to embed_dim.
        image_encoder = SwinTransformer(
            config["image_size"],
            output_dim=config["embed_dim"],
            timm_model_name=config.get("timm_model_name"),
            name="image_encoder",
            **config["swin"],
        )
        model_kwargs.setdefault("project_image", False)
    elif config["vision"] == "siglip":
        # timm's SigLIP ViT: its attention-pool output is the image embedding.
        image_encoder = SigLIPVisionTransformer(
            *(config[k] for k in ("image_size", "patch_size", "vision_width", "vision_layers")),
            config["vision_heads"],
            mlp_ratio=config["vision_mlp_ratio"],
            activation="gelu",
            timm_model_name=config["timm_model_name"],
            name="image_encoder",
        )
        model_kwargs.setdefault("project_image", False)
    elif config["vision"] == "convnext":
        # open_clip's head on the timm ConvNeXt projects to embed_dim.
        image_encoder = ConvNeXt(
            config["image_size"],
            config["convnext_depths"],
            config["convnext_dims"],
            config["embed_dim"],
            head=config["vision_head"],
            head_bias=config["vision_head_bias"],
            layer_norm_epsilon=config["vision_layer_norm_epsilon"],
            timm_model_name=config["timm_model_name"],
            name="image_encoder",
        )
        model_kwargs.setdefault("project_image", False)
    else:
        # OpenAI's ResNets project to embed_dim in the attention pool.
        image_encoder = ModifiedResNet(
            config["stage_blocks"],
            config["vision_width"],
            config["vision_heads"],
            config["image_size"],
            output_dim=config["embed_dim"],
            name="image_encoder",
        )
        model_kwargs.setdefault("project_image", False)
    if config.get("text") in HF_TEXT_ENCODERS:
        # open_clip's HFTextEncoder pools and projects to embed_dim itself.
        encoder_class = HF_TEXT_ENCODERS[config["text"]]
        text_encoder = encoder_class(
            embed_dim=config["embed_dim"], name="text_encoder", **config[config["text"]]
        )
        model_kwargs.setdefault("project_text", False)
        if config.get("coca"):  # coca_roberta-ViT-B-32
            return build_coca(model_class, config, image_encoder, text_encoder, model_kwargs)
        return model_class(image_encoder, text_encoder, config["embed_dim"], **model_kwargs)
    text_encoder = TextTransformer(
        config["vocabulary_size"],
        config["context_length"],
        config["text_width"],
        config["text_layers"],
        config["text_heads"],
        end_token_id=config.get("end_token_id"),
        activation=activation,
        mlp_ratio=config.get("text_mlp_ratio", 4.0),
        layer_norm_epsilon=config.get("text_layer_norm_epsilon", 1e-5),
        causal=config.get("text_causal", True),
        pooling=config.get("text_pooling", "end_token"),
        layer_scale_init=config.get("text_layer_scale"),
        name="text_encoder",
        **coca_text_options(config),
    )
    if config.get("coca"):
        return build_coca(model_class, config, image_encoder, text_encoder, model_kwargs)
    return model_class(image_encoder, text_encoder, config["embed_dim"], **model_kwargs)
