"""A checkpoint's architecture, read from its config or its tensors.

Every function returns (or reads) the shape fields of
`keras_clip.models.architectures` ("vision", "image_size", "vision_width",
...), from which `CLIP.from_architecture` builds the matching model.
"""

from keras import ops

from keras_clip.models.hf_text import from_open_clip_hf_text_config
from keras_clip.models.open_clip_coca import from_open_clip_coca_config
from keras_clip.models.open_clip_coca import is_open_clip_coca
from keras_clip.models.open_clip_options import check_open_clip_options
from keras_clip.models.open_clip_options import is_open_clip_hf_text
from keras_clip.models.open_clip_options import is_open_clip_siglip
from keras_clip.models.timm_convnext import from_open_clip_convnext_config
from keras_clip.models.timm_convnext import is_open_clip_convnext
from keras_clip.models.timm_eva import check_open_clip_eva_options
from keras_clip.models.timm_eva import is_open_clip_eva
from keras_clip.models.timm_fastvit import from_open_clip_fastvit_config
from keras_clip.models.timm_fastvit import is_open_clip_fastvit
from keras_clip.models.timm_swin import from_open_clip_swin_config
from keras_clip.models.timm_swin import is_open_clip_swin
from keras_clip.pretrained.open_clip_siglip import check_open_clip_siglip_options


def _count(state, prefix):
    """How many distinct indices follow `prefix` in the tensor names."""
    return len({name[len(prefix) :].split(".")[0] for name in state if name.startswith(prefix)})


def _side(length, name):
    side = round(length**0.5)
    if side * side != length:
        raise ValueError(f"{name} has {length} positions, not a square grid.")
    return side


def from_openai_state(state, head_width=64):
    """Shape fields read off an OpenAI-layout state dict, as OpenAI's
    `build_model` does (heads = width / `head_width`; QuickGELU)."""
    try:
        text_width = state["ln_final.weight"].shape[0]
        shape = dict(
            embed_dim=state["text_projection"].shape[1],
            context_length=state["positional_embedding"].shape[0],
            vocabulary_size=state["token_embedding.weight"].shape[0],
            text_width=text_width,
            text_heads=max(1, text_width // head_width),
            text_layers=_count(state, "transformer.resblocks."),
            text_mlp_ratio=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / text_width,
            activation="quick_gelu",
        )
        if "visual.proj" in state:
            width, _, patch, _ = state["visual.conv1.weight"].shape
            grid = _side(
                state["visual.positional_embedding"].shape[0] - 1, "visual.positional_embedding"
            )
            shape.update(
                vision="vit",
                vision_width=width,
                patch_size=patch,
                image_size=patch * grid,
                vision_heads=max(1, width // head_width),
                vision_layers=_count(state, "visual.transformer.resblocks."),
                vision_mlp_ratio=state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
                / width,
            )
        else:
            width = state["visual.layer1.0.conv1.weight"].shape[0]
            grid = _side(
                state["visual.attnpool.positional_embedding"].shape[0] - 1,
                "visual.attnpool.positional_embedding",
            )
            shape.update(
                vision="resnet",
                vision_width=width,
                image_size=grid * 32,
                vision_heads=max(1, width * 32 // head_width),
                stage_blocks=tuple(_count(state, f"visual.layer{i}.") for i in (1, 2, 3, 4)),
            )
    except KeyError as error:
        raise ValueError(
            f"Not an OpenAI / open_clip CLIP state dict: tensor {error.args[0]!r} is missing."
        ) from None
    return shape


def to_open_clip_config(shape):
    """The open_clip model config of a keras-clip shape."""
    return _open_clip_model_config(shape, open_clip_vision_cfg(shape))


def open_clip_vision_cfg(shape):
    """open_clip's `vision_cfg` of a keras-clip shape (ViT or ResNet)."""
    vision = {"image_size": shape["image_size"], "width": shape["vision_width"]}
    if shape["vision"] == "vit":
        vision.update(
            layers=shape["vision_layers"],
            patch_size=shape["patch_size"],
            head_width=shape["vision_width"] // shape["vision_heads"],
            mlp_ratio=shape.get("vision_mlp_ratio", 4.0),
        )
        if not shape.get("vision_pre_norm", True):
            vision["no_ln_pre"] = True
        if shape.get("vision_pooling", "token") == "mean":
            vision["pool_type"] = "avg"
            vision["final_ln_after_pool"] = bool(shape.get("vision_norm_after_pool"))
        if shape.get("vision_layer_scale") is not None:
            vision["ls_init_value"] = shape["vision_layer_scale"]
    else:
        vision.update(
            layers=list(shape["stage_blocks"]),
            head_width=shape["vision_width"] * 32 // shape["vision_heads"],
        )
    epsilon = shape.get("vision_layer_norm_epsilon", 1e-5)
    if epsilon != 1e-5:
        vision["norm_kwargs"] = {"eps": epsilon}
    return vision


def _open_clip_model_config(shape, vision_cfg, custom_text=False):
    """open_clip's model config: `vision_cfg`, and CLIP's text tower, the
    joint width and the logit bias from the shape fields."""
    text = {
        "context_length": shape["context_length"],
        "vocab_size": shape["vocabulary_size"],
        "width": shape["text_width"],
        "heads": shape["text_heads"],
        "layers": shape["text_layers"],
        "mlp_ratio": shape.get("text_mlp_ratio", 4.0),
    }
    if shape.get("end_token_id") is not None:
        text.update(pool_type="eos", eos_id=shape["end_token_id"])
    if not shape.get("text_causal", True):
        text["no_causal_mask"] = True
    if shape.get("text_pooling", "end_token") == "last":
        text["pool_type"] = "last"
    if shape.get("text_layer_scale") is not None:
        text["ls_init_value"] = shape["text_layer_scale"]
    epsilon = shape.get("text_layer_norm_epsilon", 1e-5)
    if epsilon != 1e-5:
        text["norm_kwargs"] = {"eps": epsilon}
    config = {
        "embed_dim": shape["embed_dim"],
        "quick_gelu": shape.get("activation", "quick_gelu") == "quick_gelu",
        "vision_cfg": vision_cfg,
        "text_cfg": text,
    }
    if custom_text:
        config["custom_text"] = True
    if shape.get("logit_bias") is not None:
        config["init_logit_bias"] = shape["logit_bias"]
    return config


# (config.json section, Hugging Face field, keras-clip shape field, the
# default Hugging Face's CLIPConfig uses when the field is absent).
_HUGGINGFACE_FIELDS = (
    ("vision_config", "image_size", "image_size", 224),
    ("vision_config", "patch_size", "patch_size", 32),
    ("vision_config", "hidden_size", "vision_width", 768),
    ("vision_config", "num_hidden_layers", "vision_layers", 12),
    ("vision_config", "num_attention_heads", "vision_heads", 12),
    ("text_config", "vocab_size", "vocabulary_size", 49408),
    ("text_config", "max_position_embeddings", "context_length", 77),
    ("text_config", "hidden_size", "text_width", 512),
    ("text_config", "num_hidden_layers", "text_layers", 12),
    ("text_config", "num_attention_heads", "text_heads", 8),
)
# Per tower: keras-clip's prefix and Hugging Face's default intermediate_size.
_HUGGINGFACE_TOWERS = {"vision_config": ("vision", 3072), "text_config": ("text", 2048)}


# MetaClip2Model (MetaCLIP 2, "worldwide"): CLIPModel's tensors and config,
# pooled at the first end token always (CLIPModel pools at the largest id
# when eos_token_id is 2, XLM-V's end token); the class defaults of its
# text config, as transformers 5 fills them in.
METACLIP_2 = "metaclip_2"
_METACLIP_2_TEXT_IDS = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}
_METACLIP_2_DEFAULT_EOS = 49407


def from_huggingface_config(config):
    """Shape fields from a Hugging Face `CLIPConfig` or `MetaClip2Config`
    (config.json as a dict)."""
    sections = {name: config.get(name, {}) for name in _HUGGINGFACE_TOWERS}
    model_type = config.get("model_type", "clip")
    if model_type not in ("clip", METACLIP_2):
        raise ValueError(
            f"config.json describes a {model_type!r} model, not a CLIPModel or MetaClip2Model."
        )
    activations = {side.get("hidden_act", "quick_gelu") for side in sections.values()}
    if len(activations) > 1 or not activations <= {"quick_gelu", "gelu"}:
        raise ValueError(
            f"Unsupported hidden_act {sorted(activations)}: keras-clip builds "
            "'quick_gelu' or 'gelu' towers, the same in both."
        )
    shape = {
        ours: sections[section].get(theirs, default)
        for section, theirs, ours, default in _HUGGINGFACE_FIELDS
    }
    for section, (prefix, intermediate_size) in _HUGGINGFACE_TOWERS.items():
        hidden = sections[section].get("intermediate_size", intermediate_size)
        shape[f"{prefix}_mlp_ratio"] = hidden / shape[f"{prefix}_width"]
        shape[f"{prefix}_layer_norm_epsilon"] = sections[section].get("layer_norm_eps", 1e-5)
    if model_type == METACLIP_2:
        end_token_id = sections["text_config"].get("eos_token_id", _METACLIP_2_DEFAULT_EOS)
    else:
        # CLIPModel pools at the largest id when eos_token_id is the legacy 2
        # (OpenAI's end-of-text is the largest id): so does None.
        eos = sections["text_config"].get("eos_token_id", 2)
        end_token_id = None if eos == 2 else eos
    return dict(
        vision="vit",
        embed_dim=config.get("projection_dim", 512),
        **shape,
        end_token_id=end_token_id,
        activation=activations.pop(),
    )


def to_huggingface_config(shape, logit_scale_init=2.6592):
    """config.json for a Hugging Face `CLIPModel` of a keras-clip ViT shape;
    a `MetaClip2Model` when the text tower pools at id 2 (XLM-V's end
    token, which CLIPModel would read as "pool at the largest id")."""
    if shape["vision"] != "vit":
        raise ValueError(
            "Hugging Face's CLIPModel has no ResNet image tower; save a "
            "ResNet CLIP with format='open_clip'."
        )
    if shape.get("logit_bias") is not None:
        raise ValueError(
            "Hugging Face's CLIPModel has no logit bias; save this model with format='open_clip'."
        )
    unlike = {
        "text_causal": False,
        "text_pooling": "last",
        "vision_pre_norm": False,
        "vision_pooling": "mean",
    }
    for field, value in unlike.items():
        if shape.get(field) == value:
            raise ValueError(
                f"Hugging Face's CLIPModel cannot express {field}={value!r}; save this model "
                "with format='open_clip'."
            )
    for field in ("vision_layer_scale", "text_layer_scale"):
        if shape.get(field) is not None:
            raise ValueError(
                f"Hugging Face's CLIPModel has no LayerScale ({field}); save this model "
                "with format='open_clip'."
            )
    sections = {}
    for section, (prefix, _) in _HUGGINGFACE_TOWERS.items():
        width = shape[f"{prefix}_width"]
        sections[section] = {
            "intermediate_size": round(width * shape.get(f"{prefix}_mlp_ratio", 4.0)),
            "hidden_act": shape.get("activation", "quick_gelu"),
            "layer_norm_eps": shape.get(f"{prefix}_layer_norm_epsilon", 1e-5),
            "projection_dim": shape["embed_dim"],
        }
    for section, theirs, ours, _ in _HUGGINGFACE_FIELDS:
        sections[section][theirs] = shape[ours]
    end_token = shape.get("end_token_id")
    sections["text_config"]["eos_token_id"] = 2 if end_token is None else end_token
    sections["vision_config"]["num_channels"] = 3
    architecture, model_type = "CLIPModel", "clip"
    if end_token == 2:
        architecture, model_type = "MetaClip2Model", METACLIP_2
        sections["text_config"].update(_METACLIP_2_TEXT_IDS)
    return {
        "architectures": [architecture],
        "model_type": model_type,
        "projection_dim": shape["embed_dim"],
        "logit_scale_init_value": logit_scale_init,
        **sections,
    }


def timm_model_cfg(model, timm_pool, timm_proj, custom_text=True, **vision_extra):
    """open_clip's model config of a built `CLIP` with a timm image tower
    (its `timm_model_name` and `image_size`) and CLIP's text tower."""
    vision = model.image_encoder
    if vision.timm_model_name is None:
        raise ValueError(
            f"This {type(vision).__name__} was built by hand (timm_model_name=None): "
            "open_clip needs the timm architecture's name to rebuild it."
        )
    vision_cfg = {
        "image_size": vision.image_size,
        "timm_model_name": vision.timm_model_name,
        "timm_model_pretrained": False,
        "timm_pool": timm_pool,
        "timm_proj": timm_proj,
        **vision_extra,
    }
    return _open_clip_model_config(_text_shape(model), vision_cfg, custom_text)


def is_supported_open_clip_config(config):
    """Whether every option of an open_clip model config loads exactly."""
    try:
        if is_open_clip_coca(config):
            from_open_clip_coca_config(config)
        elif is_open_clip_siglip(config):
            check_open_clip_siglip_options(config)
        elif is_open_clip_eva(config):
            check_open_clip_eva_options(config)
        elif is_open_clip_convnext(config):
            from_open_clip_convnext_config(config)
        elif is_open_clip_swin(config):
            from_open_clip_swin_config(config)
        elif is_open_clip_fastvit(config):
            from_open_clip_fastvit_config(config)
        elif is_open_clip_hf_text(config):
            from_open_clip_hf_text_config(config)
        else:
            check_open_clip_options(config)
    except ValueError:
        return False
    return True


def _text_shape(model):
    """The shape fields of a built `CLIP`'s text tower, joint width and logit bias."""
    text = model.text_encoder
    return dict(
        embed_dim=model.embed_dim,
        vocabulary_size=text.vocabulary_size,
        context_length=text.context_length,
        text_width=text.width,
        text_layers=text.num_layers,
        text_heads=text.num_heads,
        text_mlp_ratio=text.mlp_ratio,
        end_token_id=text.end_token_id,
        activation=text.activation,
        text_layer_norm_epsilon=text.layer_norm_epsilon,
        text_causal=text.causal,
        text_pooling=text.pooling,
        text_layer_scale=text.layer_scale_init,
        logit_bias=None
        if model.logit_bias is None
        else float(ops.convert_to_numpy(model.logit_bias)),
    )


def model_shape(model):
    """The shape fields of a built keras-clip `CLIP` (for writing configs)."""
    return {**_text_shape(model), **vision_shape(model)}


def vision_shape(model):
    """The shape fields of a built `CLIP`'s ViT or modified ResNet tower."""
    vision = model.image_encoder
    shape = dict(image_size=vision.image_size, vision_width=vision.width)
    if hasattr(vision, "patch_size"):
        shape.update(
            vision="vit",
            patch_size=vision.patch_size,
            vision_layers=vision.num_layers,
            vision_heads=vision.num_heads,
            vision_mlp_ratio=vision.mlp_ratio,
            vision_layer_norm_epsilon=vision.layer_norm_epsilon,
            vision_pre_norm=vision.pre_norm,
            vision_pooling=vision.pooling,
            vision_norm_after_pool=vision.norm_after_pool,
            vision_layer_scale=vision.layer_scale_init,
        )
    else:
        shape.update(
            vision="resnet", stage_blocks=vision.stage_blocks, vision_heads=vision.num_heads
        )
    return shape
