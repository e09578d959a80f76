"""Hugging Face `SiglipModel` and `Siglip2Model` checkpoints: config, tensor
names, write-back.

A SigLIP model here is a `keras_clip.CLIP` with a `SigLIPVisionTransformer`
and a `SigLIPTextTransformer` (their heads are the projections, so
`project_image` and `project_text` are False) and the `SigLIPLoss`
objective, which holds the learned logit scale (as its log, as Hugging Face
stores it) and bias. SigLIP 2's fixed-resolution checkpoints use the same
`SiglipModel` layout and load the same way. SigLIP 2's NaFlex checkpoints
(`Siglip2Model`, model_type "siglip2") have a `NaFlexVisionTransformer`
instead: a Linear patch embedding over flattened patches and a square grid
of position embeddings (`vision_config.num_patches`), resized per image.

Example:

```python
model = keras_clip.CLIP.from_pretrained("siglip-base-patch16-224/")
model.save_pretrained("tuned/")  # transformers' SiglipModel.from_pretrained reads it
```
"""

import numpy as np

from keras_clip.encoders.naflex_vision import NaFlexVisionTransformer
from keras_clip.encoders.siglip_text import SigLIPTextTransformer
from keras_clip.encoders.siglip_vision import SigLIPVisionTransformer
from keras_clip.pretrained.layouts import huggingface_block
from keras_clip.pretrained.weight_map import conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import reshaped
from keras_clip.pretrained.weight_map import tensor

SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)
NAFLEX_PATCH_BUDGET = 256  # Siglip2ImageProcessor's default max_num_patches
# Each tower's Hugging Face config fields and their defaults.
_VISION_FIELDS = {
    "image_size": 224,  # SiglipModel
    "num_patches": 256,  # Siglip2Model (NaFlex): the position grid's size
    "patch_size": 16,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-6,
}
_TEXT_FIELDS = {
    "vocab_size": 32000,
    "max_position_embeddings": 64,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-6,
}
_ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


# A text_config key of keras-clip's own: False for open_clip's text towers
# without projection, which SiglipModel cannot hold (written as an identity head).
TEXT_PROJECTION = "keras_clip_text_projection"


def identity_text_head(model):
    """SiglipModel's text head tensors for a text tower without one: the
    identity and zero bias (the same function), or {} if it has a head."""
    text = model.text_encoder
    if text.head is not None:
        return {}
    return {
        "text_model.head.weight": np.eye(text.width, dtype="float32"),
        "text_model.head.bias": np.zeros(text.width, "float32"),
    }


def is_siglip_config(config):
    return config.get("model_type") in ("siglip", "siglip2")


def is_naflex_config(config):
    return config.get("model_type") == "siglip2"


def _section(config, name, fields):
    section = {key: config.get(name, {}).get(key, default) for key, default in fields.items()}
    act = config.get(name, {}).get("hidden_act", "gelu_pytorch_tanh")
    if act not in _ACTIVATIONS:
        raise ValueError(f"Unsupported {name} hidden_act {act!r}; expected {sorted(_ACTIVATIONS)}.")
    if config.get(name, {}).get("vision_use_head", True) is False:
        raise ValueError("vision_use_head=False (no pooling head) is not supported.")
    section["activation"] = _ACTIVATIONS[act]
    return section


def build_siglip(model_class, config, **model_kwargs):
    """A `model_class` (CLIP) of a Hugging Face `SiglipConfig` dict's shape."""
    from keras_clip.objectives import SigLIPLoss

    vision = _section(config, "vision_config", _VISION_FIELDS)
    text = _section(config, "text_config", _TEXT_FIELDS)
    embed_dim = config.get("text_config", {}).get("projection_size") or text["hidden_size"]
    if embed_dim != vision["hidden_size"]:
        raise ValueError(
            f"The text head's projection_size ({embed_dim}) must equal the vision "
            f"hidden_size ({vision['hidden_size']}): SigLIP's image embedding is the "
            "vision head's output."
        )
    tower_shape = (
        vision["patch_size"],
        vision["hidden_size"],
        vision["num_hidden_layers"],
        vision["num_attention_heads"],
    )
    tower_options = {
        "mlp_ratio": vision["intermediate_size"] / vision["hidden_size"],
        "activation": vision["activation"],
        "layer_norm_epsilon": vision["layer_norm_eps"],
        "name": "image_encoder",
    }
    if is_naflex_config(config):
        grid = round(vision["num_patches"] ** 0.5)
        if grid * grid != vision["num_patches"]:
            raise ValueError(
                f"vision_config.num_patches={vision['num_patches']} is not a square grid."
            )
        image_encoder = NaFlexVisionTransformer(
            *tower_shape, position_grid_size=grid, **tower_options
        )
    else:
        image_encoder = SigLIPVisionTransformer(vision["image_size"], *tower_shape, **tower_options)
    text_encoder = SigLIPTextTransformer(
        text["vocab_size"],
        text["max_position_embeddings"],
        text["hidden_size"],
        text["num_hidden_layers"],
        text["num_attention_heads"],
        embed_dim=embed_dim,
        mlp_ratio=text["intermediate_size"] / text["hidden_size"],
        activation=text["activation"],
        layer_norm_epsilon=text["layer_norm_eps"],
        # open_clip's proj_type="none" (no SiglipConfig field: open_clip_siglip sets it)
        projection=config.get("text_config", {}).get(TEXT_PROJECTION, True),
        name="text_encoder",
    )
    model_kwargs.setdefault("objective", SigLIPLoss())
    return model_class(
        image_encoder,
        text_encoder,
        embed_dim,
        project_image=False,
        project_text=False,
        **model_kwargs,
    )


def is_siglip_model(model):
    """Whether both towers are SigLIP's (a `SiglipModel` holds the model;
    NLLB-SigLIP's NLLB text tower is written as open_clip's)."""
    return isinstance(
        getattr(model, "image_encoder", None), (SigLIPVisionTransformer, NaFlexVisionTransformer)
    ) and isinstance(getattr(model, "text_encoder", None), SigLIPTextTransformer)


def is_naflex_model(model):
    return isinstance(getattr(model, "image_encoder", None), NaFlexVisionTransformer)


def huggingface_siglip_weight_map(model):
    """Entries for Hugging Face `SiglipModel` names."""
    vision, text = model.image_encoder, model.text_encoder
    v, t = "vision_model", "text_model"
    head = vision.head
    if is_naflex_model(model):  # a Linear over flattened (row, column, channel) patches
        entries = dense(vision.patch_embedding, f"{v}.embeddings.patch_embedding")
    else:
        entries = conv(vision.patch_embedding, f"{v}.embeddings.patch_embedding.weight") + [
            tensor(vision.patch_embedding.bias, f"{v}.embeddings.patch_embedding.bias")
        ]
    entries += [tensor(vision.positional_embedding, f"{v}.embeddings.position_embedding.weight")]
    for i, block in enumerate(vision.blocks):
        entries += huggingface_block(block, f"{v}.encoder.layers.{i}")
    entries += layer_norm(vision.post_norm, f"{v}.post_layernorm")
    entries += [
        tensor(head.probe, f"{v}.head.probe"),
        *dense(
            head.in_projection,
            f"{v}.head.attention.in_proj_weight",
            f"{v}.head.attention.in_proj_bias",
        ),
        *dense(head.out_projection, f"{v}.head.attention.out_proj"),
        *layer_norm(head.norm, f"{v}.head.layernorm"),
        *dense(head.mlp_hidden, f"{v}.head.mlp.fc1"),
        *dense(head.mlp_output, f"{v}.head.mlp.fc2"),
    ]
    entries += [
        tensor(text.token_embedding.embeddings, f"{t}.embeddings.token_embedding.weight"),
        tensor(text.positional_embedding, f"{t}.embeddings.position_embedding.weight"),
    ]
    for i, block in enumerate(text.blocks):
        entries += huggingface_block(block, f"{t}.encoder.layers.{i}")
    entries += layer_norm(text.final_norm, f"{t}.final_layer_norm")
    if text.head is not None:
        entries += dense(text.head, f"{t}.head")
    entries += [
        reshaped(model.objective.log_logit_scale, "logit_scale", (1,)),
        reshaped(model.objective.logit_bias, "logit_bias", (1,)),
    ]
    return entries


def to_huggingface_siglip_config(model):
    """config.json for transformers' `SiglipModel` of `model`'s shape."""
    vision, text = model.image_encoder, model.text_encoder
    activations = {value: key for key, value in _ACTIVATIONS.items()}

    def tower(encoder):
        return {
            "hidden_size": encoder.width,
            "num_hidden_layers": encoder.num_layers,
            "num_attention_heads": encoder.num_heads,
            "intermediate_size": round(encoder.width * encoder.mlp_ratio),
            "hidden_act": activations[encoder.activation],
            "layer_norm_eps": encoder.layer_norm_epsilon,
        }

    family = "siglip2" if is_naflex_model(model) else "siglip"
    grid = (
        {"num_patches": vision.position_grid_size**2}
        if is_naflex_model(model)
        else {"image_size": vision.image_size}
    )
    return {
        "architectures": ["Siglip2Model" if family == "siglip2" else "SiglipModel"],
        "model_type": family,
        "vision_config": {
            **tower(vision),
            **grid,
            "patch_size": vision.patch_size,
            "num_channels": 3,
            "model_type": f"{family}_vision_model",
        },
        "text_config": {
            **tower(text),
            "vocab_size": text.vocabulary_size,
            "max_position_embeddings": text.context_length,
            "projection_size": text.embed_dim,
            "model_type": f"{family}_text_model",
        },
    }
