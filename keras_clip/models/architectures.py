"""Named model shapes: OpenAI's published ones and small CPU-sized ones."""

import contextlib

import keras

from keras_clip.encoders.modified_resnet import ModifiedResNet
from keras_clip.encoders.text_transformer import TextTransformer
from keras_clip.encoders.vision_transformer import VisionTransformer

_OPENAI_TEXT = dict(
    vocabulary_size=49408, context_length=77, text_width=512, text_layers=12, text_heads=8
)


_TINY_TEXT = dict(
    text_width=32, text_layers=2, text_heads=2, vocabulary_size=100, context_length=16
)


def _vit(image_size, patch_size, width, layers, heads, embed_dim, **text):
    vision = {
        "image_size": image_size,
        "patch_size": patch_size,
        "vision_width": width,
        "vision_layers": layers,
        "vision_heads": heads,
    }
    return {"vision": "vit", **vision, "embed_dim": embed_dim, **_OPENAI_TEXT, **text}


def _resnet(stage_blocks, width, image_size, embed_dim, **text):
    return dict(
        vision="resnet",
        stage_blocks=stage_blocks,
        vision_width=width,
        vision_heads=width * 32 // 64,
        image_size=image_size,
        embed_dim=embed_dim,
        **{**_OPENAI_TEXT, **text},
    )


_SMALL_TEXT = dict(vocabulary_size=1000, context_length=32)

ARCHITECTURES = {
    # OpenAI's published shapes (Radford et al. 2021, table 19 / 20).
    "RN50": _resnet((3, 4, 6, 3), 64, 224, 1024),
    "RN101": _resnet((3, 4, 23, 3), 64, 224, 512),
    "RN50x4": _resnet((4, 6, 10, 6), 80, 288, 640, text_width=640, text_heads=10),
    "ViT-B-32": _vit(224, 32, 768, 12, 12, 512),
    "ViT-B-16": _vit(224, 16, 768, 12, 12, 512),
    "ViT-L-14": _vit(224, 14, 1024, 24, 16, 768, text_width=768, text_heads=12),
    "ViT-L-14-336": _vit(336, 14, 1024, 24, 16, 768, text_width=768, text_heads=12),
    # CPU-sized shapes for the demo, benchmarks and tests.
    "shapes-vit": _vit(
        64, 8, 128, 4, 4, 128, text_width=128, text_layers=2, text_heads=4, **_SMALL_TEXT
    ),
    "bench-vit": _vit(
        64, 8, 192, 4, 3, 128, text_width=192, text_layers=4, text_heads=3, **_SMALL_TEXT
    ),
    "tiny-vit": _vit(32, 8, 32, 2, 2, 16, **_TINY_TEXT),
    "tiny-rn": _resnet((1, 1, 1, 1), 8, 64, 16, **_TINY_TEXT),
}

SHAPE_FIELDS = set().union(*ARCHITECTURES.values()) | {
    "end_token_id",
    "activation",
    "vision_mlp_ratio",
    "text_mlp_ratio",
    "vision_layer_norm_epsilon",
    "text_layer_norm_epsilon",
}


def architecture_config(name, **overrides):
    """The shape fields of `name` with `overrides` applied."""
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {name!r}. Available: {sorted(ARCHITECTURES)}.")
    return {**ARCHITECTURES[name], **overrides}


def build_architecture(model_class, name, **overrides):
    """Builds `model_class` (CLIP or CLIPLite) with a named shape."""
    shape_overrides = {k: v for k, v in overrides.items() if k in SHAPE_FIELDS}
    model_kwargs = {k: v for k, v in overrides.items() if k not in SHAPE_FIELDS}
    with dtype_policy_scope(model_kwargs.get("dtype")):
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
    """Builds `model_class` from shape fields (as in `ARCHITECTURES`)."""
    activation = config.get("activation", "quick_gelu")
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
            name="image_encoder",
        )
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
        name="text_encoder",
    )
    return model_class(image_encoder, text_encoder, config["embed_dim"], **model_kwargs)
