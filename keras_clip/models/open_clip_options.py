"""Every option of an open_clip model config: loaded exactly, or refused.

open_clip's `CLIP` takes many options in its `vision_cfg` and `text_cfg`
(and at the top level). A loader that read only the shape and ignored the
rest would build a model that loads without error and computes something
else. `check_open_clip_options` goes through every key: each one is either
honoured (it changes nothing here, or keras-clip builds it), or refused
with an error that names it. Unknown keys are refused too.

`from_open_clip_config` turns a checked config into keras-clip's shape
fields (`keras_clip.models.architectures`).

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

extra = check_open_clip_options(open_clip_architectures()["ViT-B-32"])
config = {**open_clip_architectures()["ViT-B-32"], "custom_text": True}
# check_open_clip_options(config) raises ValueError naming custom_text
```
"""

# Keys that change neither the weights nor the outputs at inference.
_INERT = {
    "top": {"cast_dtype", "init_logit_scale", "init_logit_bias", "quick_gelu", "embed_dim"},
    "vision": {
        "layers", "width", "head_width", "mlp_ratio", "patch_size", "image_size",
        "output_tokens", "patch_dropout", "timm_model_pretrained",
    },
    "text": {
        "context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio",
        "output_tokens", "pad_id", "hf_tokenizer_name", "tokenizer_mode", "tokenizer_kwargs",
        "hf_model_pretrained", "final_ln_after_pool", "eos_id",
    },
}  # fmt: skip
# Block options both towers take, honoured only at open_clip's defaults.
_BLOCK_DEFAULTS = {
    "act_kwargs": None,
    "block_type": None,
    "qk_norm": False,
    "scaled_cosine_attn": False,
    "scale_heads": False,
    "scale_attn_inner": False,
    "scale_attn": False,
    "scale_fc": False,
}
# Keys honoured only at their open_clip default (the refusal names the key).
_DEFAULT_ONLY = {
    "top": {"custom_text": False, "multimodal_cfg": None, "output_dict": None},
    "vision": {
        **_BLOCK_DEFAULTS,
        "attentional_pool": False,
        "attn_pooler_queries": None,
        "attn_pooler_heads": None,
        "pos_embed_type": "learnable",
        "timm_model_name": None,
        "timm_pool": None,
        "timm_proj": None,
        "timm_proj_bias": None,
        "timm_drop": None,
        "timm_drop_path": None,
        "input_patchnorm": False,
        "global_average_pool": False,
    },
    "text": {
        **_BLOCK_DEFAULTS,
        "embed_cls": False,
        "proj_bias": False,
        "proj_type": "linear",
        "hf_model_name": None,
        "hf_proj_type": None,
        "hf_pooler_type": None,
    },
}
_WHY = {
    "attentional_pool": "an attentional pooler",
    "no_ln_pre": "no LayerNorm before the blocks",
    "timm_model_name": "a timm image tower",
    "hf_model_name": "a Hugging Face text tower",
    "custom_text": "CustomTextCLIP's tensor layout",
    "multimodal_cfg": "a CoCa decoder",
    "embed_cls": "a text class token",
    "proj_bias": "a text projection with bias",
    "proj_type": "a text projection other than linear",
}
_SECTIONS = {"vision": "vision_cfg", "text": "text_cfg"}


def _refuse(where, key, value):
    what = _WHY.get(key, "a setting keras-clip's towers do not build")
    raise ValueError(
        f"open_clip option {where}{key}={value!r} ({what}) is not supported: the model would "
        "load but compute something else."
    )


def _norm_epsilon(where, norm_kwargs):
    if not norm_kwargs:
        return 1e-5
    unknown = set(norm_kwargs) - {"eps"}
    if unknown:
        _refuse(where, "norm_kwargs", norm_kwargs)
    return float(norm_kwargs["eps"])


def check_open_clip_options(config):
    """Checks every key of an open_clip model config.

    Args:
        config: dict, the model config (`model_cfg` of open_clip_config.json).

    Returns:
        dict of extra shape fields: "vision_layer_norm_epsilon",
        "text_layer_norm_epsilon", "end_token_id" (text pool_type "eos")
        and "logit_bias" (init_logit_bias: the model has a learned logit
        bias, a sigmoid objective's; else None).

    Raises:
        ValueError: naming the first option keras-clip cannot build exactly.
    """
    sections = {"top": config}
    for part, name in _SECTIONS.items():
        sections[part] = config.get(name, {}) or {}
    for part, values in sections.items():
        check_open_clip_section(part, values)
    vision, text = sections["vision"], sections["text"]
    if vision.get("pool_type", "tok") not in ("tok", "avg"):
        _refuse("vision_cfg.", "pool_type", vision["pool_type"])
    return {
        "vision_pre_norm": not vision.get("no_ln_pre", False),
        "vision_pooling": "mean" if vision.get("pool_type") == "avg" else "token",
        "vision_norm_after_pool": bool(vision.get("final_ln_after_pool", False)),
        "vision_layer_scale": vision.get("ls_init_value"),
        "vision_layer_norm_epsilon": _norm_epsilon("vision_cfg.", vision.get("norm_kwargs")),
        **open_clip_text_fields(text),
        "logit_bias": config.get("init_logit_bias"),
    }


def check_open_clip_section(part, values):
    """Checks the keys of one section ("top", "vision" or "text") of an
    open_clip model config: each is inert, or at its open_clip default."""
    where = "" if part == "top" else f"{_SECTIONS[part]}."
    allowed = _INERT[part] | set(_DEFAULT_ONLY[part]) | {"norm_kwargs", "pool_type"}
    allowed |= {"ls_init_value"} if part != "top" else set()
    if part == "text":
        allowed |= {"no_causal_mask"}
    if part == "vision":
        allowed |= {"no_ln_pre", "final_ln_after_pool"}
    if part == "top":
        allowed |= set(_SECTIONS.values())
    for key, value in values.items():
        if key not in allowed:
            raise ValueError(f"Unknown open_clip option {where}{key}={value!r}.")
        default = _DEFAULT_ONLY[part].get(key, value)
        if key in _DEFAULT_ONLY[part] and value not in (default, None):
            _refuse(where, key, value)


def open_clip_text_fields(text):
    """The text tower's extra shape fields of a checked `text_cfg`."""
    pool = text.get("pool_type", "argmax")
    if pool not in ("argmax", "eos", "last"):
        _refuse("text_cfg.", "pool_type", pool)
    return {
        "text_layer_norm_epsilon": _norm_epsilon("text_cfg.", text.get("norm_kwargs")),
        "end_token_id": text.get("eos_id", 2) if pool == "eos" else None,
        "text_causal": not text.get("no_causal_mask", False),
        "text_pooling": "last" if pool == "last" else "end_token",
        "text_layer_scale": text.get("ls_init_value"),
    }


def is_open_clip_siglip(config):
    """Whether an open_clip model config is a timm SigLIP CustomTextCLIP
    (read by `keras_clip.pretrained.open_clip_siglip`, not by
    `from_open_clip_config`)."""
    name = (config.get("vision_cfg") or {}).get("timm_model_name") or ""
    # With a Hugging Face text tower (NLLB-SigLIP): `keras_clip.models.timm_siglip`.
    return (
        bool(config.get("custom_text")) and "_siglip_" in name and not is_open_clip_hf_text(config)
    )


def is_open_clip_hf_text(config):
    """Whether an open_clip model config has a Hugging Face text tower
    (`keras_clip.models.hf_text`)."""
    return bool((config.get("text_cfg") or {}).get("hf_model_name"))


def from_open_clip_config(config):
    """Shape fields from an open_clip model config (its JSON as a dict);
    every option is checked (`check_open_clip_options`): a model that would
    load but compute something else is refused, naming the option."""
    extra = check_open_clip_options(config)
    vision, text = config["vision_cfg"], config["text_cfg"]
    layers = vision["layers"]
    shape = dict(
        embed_dim=config["embed_dim"],
        image_size=vision["image_size"],
        vision_width=vision["width"],
        context_length=text.get("context_length", 77),
        vocabulary_size=text.get("vocab_size", 49408),
        # open_clip's CLIPTextCfg defaults where a config leaves them out.
        text_width=text.get("width", 512),
        text_heads=text.get("heads", 8),
        text_layers=text.get("layers", 12),
        vision_mlp_ratio=vision.get("mlp_ratio", 4.0),
        text_mlp_ratio=text.get("mlp_ratio", 4.0),
        activation="quick_gelu" if config.get("quick_gelu") else "gelu",
    )
    head_width = vision.get("head_width", 64)
    if isinstance(layers, (list, tuple)):
        shape.update(
            vision="resnet",
            stage_blocks=tuple(layers),
            vision_heads=vision["width"] * 32 // head_width,
        )
    else:
        shape.update(
            vision="vit",
            patch_size=vision["patch_size"],
            vision_layers=layers,
            vision_heads=vision["width"] // head_width,
        )
    return {**shape, **extra}
