"""open_clip's own SigLIP checkpoints (`ViT-B-16-SigLIP`, `...-SigLIP2`,
`ViT-SO400M-14-SigLIP`, ...): read as Hugging Face `SiglipModel` ones.

open_clip builds these as a `CustomTextCLIP`: a timm `VisionTransformer`
without class token, pooled by its attention-pool head
(`visual.trunk.*`, `attn_pool.latent/q/kv/proj/norm/mlp`), and open_clip's
`TextTransformer` without causal mask, pooled at the last position, with a
biased projection (`text.*`). That is SigLIP's computation, so the config
becomes a `SiglipConfig` dict (shapes read from the tensors, heads from
the timm name) and the tensors are renamed to `SiglipModel`'s names
(`attn.qkv` split into q/k/v, `q` and `kv` joined into the head's
in-projection); `keras_clip.pretrained.siglip` builds and loads the rest.
A text tower without projection (`proj_type="none"`: the i18n SO400M)
builds without head.
Every config key is checked: one that would compute differently is
refused with an error naming it. Activations follow open_clip: timm's
towers use exact GELU; the text tower uses exact GELU unless
`act_kwargs` asks for the tanh approximation (SigLIP 2 configs).

Example:

```python
from keras_clip.models.open_clip_options import is_open_clip_siglip

config = {
    "embed_dim": 64,
    "custom_text": True,
    "init_logit_bias": -10,
    "vision_cfg": {"image_size": 32, "timm_model_name": "vit_base_patch16_siglip_224",
                   "timm_pool": "map", "timm_proj": "none"},
    "text_cfg": {"context_length": 16, "vocab_size": 100, "width": 64, "heads": 4,
                 "layers": 2, "no_causal_mask": True, "proj_bias": True,
                 "pool_type": "last", "norm_kwargs": {"eps": 1e-6}},
}
is_open_clip_siglip(config)  # True
```
"""

import numpy as np

from keras_clip.models.timm_siglip import TIMM_SIGLIP_SHAPES
from keras_clip.models.timm_siglip import TRUNK
from keras_clip.models.timm_siglip import parse_timm_siglip_name
from keras_clip.models.timm_siglip import timm_siglip_tensor_shape
from keras_clip.pretrained.siglip import TEXT_PROJECTION
from keras_clip.pretrained.weight_map import conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import reshaped
from keras_clip.pretrained.weight_map import split_dense
from keras_clip.pretrained.weight_map import tensor

_TOP_INERT = {"embed_dim", "init_logit_scale", "init_logit_bias", "cast_dtype"}
_TOP_INERT |= {"vision_cfg", "text_cfg"}
_VISION_INERT = {"image_size", "timm_model_name", "timm_model_pretrained", "timm_drop"}
_VISION_INERT |= {"timm_drop_path", "timm_proj_bias"}
_TEXT_INERT = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}
_TEXT_INERT |= {"hf_tokenizer_name", "tokenizer_kwargs", "norm_kwargs", "act_kwargs"}
_TEXT_INERT |= {"pad_id", "output_tokens", "proj_type"}  # proj_type: checked below
# Keys honoured at one value; those marked True must be given (open_clip's
# default would compute something else).
_FIXED = {
    "top": {"custom_text": (True, True), "quick_gelu": (False, False)},
    "vision_cfg": {"timm_pool": ("map", True), "timm_proj": ("none", True)},
    "text_cfg": {
        "no_causal_mask": (True, True),
        "proj_bias": (True, True),
        "pool_type": ("last", True),
        "final_ln_after_pool": (False, False),
        "embed_cls": (False, False),
        "ls_init_value": (None, False),
    },
}
_INERT = {"top": _TOP_INERT, "vision_cfg": _VISION_INERT, "text_cfg": _TEXT_INERT}


def _refuse(key, value, expected):
    raise ValueError(
        f"open_clip option {key}={value!r} is not supported for a SigLIP model "
        f"(keras-clip builds {expected}): the model would load but compute something else."
    )


def check_open_clip_siglip_options(config):
    """Checks every key of a SigLIP open_clip config; returns the vision
    tower's timm (width name, patch size)."""
    vision, text = config["vision_cfg"], config["text_cfg"]
    for section, values in (("top", config), ("vision_cfg", vision), ("text_cfg", text)):
        where = "" if section == "top" else f"{section}."
        for key, value in values.items():
            if key not in _INERT[section] and key not in _FIXED[section]:
                _refuse(f"{where}{key}", value, "no such option")
        fixed = dict(_FIXED[section])
        if section == "text_cfg" and text.get("proj_type") == "none":
            fixed.pop("proj_bias")  # no projection, no bias
        for key, (value, required) in fixed.items():
            if (key in values or required) and values.get(key) != value:
                _refuse(f"{where}{key}", values.get(key), f"{key}={value!r}")
    projection = text.get("proj_type", "linear")
    if projection not in ("linear", "none"):
        _refuse("text_cfg.proj_type", projection, 'a "linear" projection or "none"')
    if projection == "none" and text["width"] != config["embed_dim"]:
        _refuse("text_cfg.width", text["width"], f"width = embed_dim ({config['embed_dim']})")
    if set(text.get("norm_kwargs") or {}) - {"eps"}:
        _refuse("text_cfg.norm_kwargs", text["norm_kwargs"], "LayerNorm with eps only")
    if (text.get("act_kwargs") or {}) not in ({}, {"approximate": "tanh"}):
        _refuse("text_cfg.act_kwargs", text["act_kwargs"], "GELU, exact or tanh")
    parsed = parse_timm_siglip_name(vision["timm_model_name"])
    if parsed is None:
        _refuse(
            "vision_cfg.timm_model_name",
            vision["timm_model_name"],
            f"timm's vit_{{{'|'.join(TIMM_SIGLIP_SHAPES)}}}_patchN_siglip_SIZE towers",
        )
    return parsed[:2]


def huggingface_siglip_config(config, tensors):
    """The `SiglipConfig` dict of an open_clip SigLIP config; shapes the
    config leaves to timm are read from the tensors."""
    size, _ = check_open_clip_siglip_options(config)
    vision, text = config["vision_cfg"], config["text_cfg"]
    tower = timm_siglip_tensor_shape(tensors)
    # timm builds the tower at its name's resolution; the config's is the input's.
    image_size, grid, patch = vision["image_size"], tower["grid"], tower["patch"]
    if image_size // patch != grid:
        raise ValueError(
            f"vision_cfg.image_size={image_size} but the timm tower's position "
            f"embeddings are for a {grid} x {grid} grid of {patch} px patches."
        )
    tanh = (text.get("act_kwargs") or {}).get("approximate") == "tanh"
    return {
        "model_type": "siglip",
        "vision_config": {
            "image_size": image_size,
            "patch_size": patch,
            "hidden_size": tower["width"],
            "num_hidden_layers": tower["depth"],
            "num_attention_heads": TIMM_SIGLIP_SHAPES[size][2],
            "intermediate_size": tower["mlp_hidden"],
            "layer_norm_eps": 1e-6,  # timm's ViT
            "hidden_act": "gelu",
        },
        "text_config": {
            "vocab_size": text["vocab_size"],
            "max_position_embeddings": text["context_length"],
            "hidden_size": text["width"],
            "num_hidden_layers": text["layers"],
            "num_attention_heads": text["heads"],
            "intermediate_size": round(text["width"] * text.get("mlp_ratio", 4.0)),
            "layer_norm_eps": (text.get("norm_kwargs") or {}).get("eps", 1e-5),
            "hidden_act": "gelu_pytorch_tanh" if tanh else "gelu",
            "projection_size": config["embed_dim"],
            TEXT_PROJECTION: text.get("proj_type", "linear") != "none",
        },
    }


def _split_qkv(renamed, prefix, weight, bias):
    for index, part in enumerate(("q_proj", "k_proj", "v_proj")):
        renamed[f"{prefix}.{part}.weight"] = np.split(weight, 3)[index]
        renamed[f"{prefix}.{part}.bias"] = np.split(bias, 3)[index]


_BLOCK_PARTS = {  # open_clip / timm block part -> Hugging Face's
    "norm1": "layer_norm1",
    "ln_1": "layer_norm1",
    "norm2": "layer_norm2",
    "ln_2": "layer_norm2",
    "attn.proj": "self_attn.out_proj",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.c_fc": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.c_proj": "mlp.fc2",
}


def _rename_block(renamed, tensors, source, target):
    for part, hf_part in _BLOCK_PARTS.items():
        for kind in ("weight", "bias"):
            name = f"{source}.{part}.{kind}"
            if name in tensors:
                renamed[f"{target}.{hf_part}.{kind}"] = tensors.pop(name)
    for qkv in ("attn.qkv", "attn.in_proj"):
        suffix = ("weight", "bias") if qkv == "attn.qkv" else ("_weight", "_bias")
        names = [f"{source}.{qkv}{'.' if qkv == 'attn.qkv' else ''}{s}" for s in suffix]
        if names[0] in tensors:
            weight, bias = (tensors.pop(name) for name in names)
            _split_qkv(renamed, f"{target}.self_attn", weight, bias)


def huggingface_siglip_tensors(tensors):
    """open_clip SigLIP tensors under `SiglipModel`'s names. Tensors left
    over keep their names, so the strict loader names them."""
    tensors = {name: np.asarray(value) for name, value in tensors.items()}
    v, t, trunk = "vision_model", "text_model", "visual.trunk"
    renamed = {
        f"{v}.embeddings.patch_embedding.weight": tensors.pop(f"{trunk}.patch_embed.proj.weight"),
        f"{v}.embeddings.patch_embedding.bias": tensors.pop(f"{trunk}.patch_embed.proj.bias"),
        f"{v}.embeddings.position_embedding.weight": tensors.pop(f"{trunk}.pos_embed")[0],
        f"{v}.head.probe": tensors.pop(f"{trunk}.attn_pool.latent"),
        f"{t}.embeddings.token_embedding.weight": tensors.pop("text.token_embedding.weight"),
        f"{t}.embeddings.position_embedding.weight": tensors.pop("text.positional_embedding"),
    }
    for kind in ("weight", "bias"):
        renamed[f"{v}.head.attention.in_proj_{kind}"] = np.concatenate(
            [
                tensors.pop(f"{trunk}.attn_pool.q.{kind}"),
                tensors.pop(f"{trunk}.attn_pool.kv.{kind}"),
            ]
        )
        for source, target in (
            (f"{trunk}.norm", f"{v}.post_layernorm"),
            (f"{trunk}.attn_pool.proj", f"{v}.head.attention.out_proj"),
            (f"{trunk}.attn_pool.norm", f"{v}.head.layernorm"),
            (f"{trunk}.attn_pool.mlp.fc1", f"{v}.head.mlp.fc1"),
            (f"{trunk}.attn_pool.mlp.fc2", f"{v}.head.mlp.fc2"),
            ("text.ln_final", f"{t}.final_layer_norm"),
        ):
            renamed[f"{target}.{kind}"] = tensors.pop(f"{source}.{kind}")
        if f"text.text_projection.{kind}" in tensors:  # absent with proj_type="none"
            renamed[f"{t}.head.{kind}"] = tensors.pop(f"text.text_projection.{kind}")
    for name in sorted(tensors):
        for prefix, target in (
            (f"{trunk}.blocks.", f"{v}.encoder.layers."),
            ("text.transformer.resblocks.", f"{t}.encoder.layers."),
        ):
            if name.startswith(prefix) and name in tensors:
                index = name[len(prefix) :].split(".")[0]
                _rename_block(renamed, tensors, prefix + index, target + index)
    for name in ("logit_scale", "logit_bias"):
        if name in tensors:
            renamed[name] = np.reshape(tensors.pop(name), (1,))
    return {**renamed, **tensors}


def timm_siglip_vision_entries(encoder):
    """A `SigLIPVisionTransformer` under open_clip's names of timm's tower
    (`visual.trunk.*`), both ways: the NLLB-SigLIP CLIPs, written back as
    open_clip directories (SiglipModel cannot hold their text tower)."""
    width = encoder.width
    entries = conv(encoder.patch_embedding, f"{TRUNK}patch_embed.proj.weight") + [
        tensor(encoder.patch_embedding.bias, f"{TRUNK}patch_embed.proj.bias"),
        reshaped(
            encoder.positional_embedding, f"{TRUNK}pos_embed", (1, encoder.grid_size**2, width)
        ),
    ]
    for i, block in enumerate(encoder.blocks):
        prefix = f"{TRUNK}blocks.{i}"
        entries += layer_norm(block.attention_norm, f"{prefix}.norm1")
        entries += dense(block.attention.qkv_dense, f"{prefix}.attn.qkv")
        entries += dense(block.attention.output_dense, f"{prefix}.attn.proj")
        entries += layer_norm(block.mlp_norm, f"{prefix}.norm2")
        entries += dense(block.mlp_hidden, f"{prefix}.mlp.fc1")
        entries += dense(block.mlp_output, f"{prefix}.mlp.fc2")
    head, pool = encoder.head, f"{TRUNK}attn_pool"
    return (
        entries
        + layer_norm(encoder.post_norm, f"{TRUNK}norm")
        + [tensor(head.probe, f"{pool}.latent")]
        # timm's query Linear and key-value Linear are the head's one in-projection.
        + split_dense(head.in_projection, [f"{pool}.q", f"{pool}.kv"], sizes=(width, 2 * width))
        + dense(head.out_projection, f"{pool}.proj")
        + layer_norm(head.norm, f"{pool}.norm")
        + dense(head.mlp_hidden, f"{pool}.mlp.fc1")
        + dense(head.mlp_output, f"{pool}.mlp.fc2")
    )
