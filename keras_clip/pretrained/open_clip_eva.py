"""open_clip's EVA-01, EVA-02, PE-Core and ViTamin checkpoints (and those
of timm's plain ViTs open_clip uses): tensors in and out.

open_clip stores these `CustomTextCLIP`s as `visual.trunk.*` (timm's
`Eva`, its head the projection) and `text.*` (CLIP's text tower); ViT-M/16
GAP (`vit_medium_patch16_gap_256`) is a plain `CLIP`: CLIP's text names,
and open_clip's bias-free `visual.head.proj` after timm's trunk. timm
keeps each block's query, key and value in one of three forms: one biased
`attn.qkv` (PE), one bias-free `attn.qkv` with `q_bias` and `v_bias`
(EVA-01, EVA-02-E), or `q_proj`, `k_proj` (no bias) and `v_proj`
(EVA-02). `EVAVisionTransformer` keeps them apart, so reading splits the
fused forms into the separate names and writing joins them again; the
split and the join are exact.

Example:

```python
model = keras_clip.CLIP.from_pretrained("PE-Core-T-16-384/")  # open_clip directory
model.save_pretrained("tuned/", format="open_clip")  # open_clip.create_model reads it
```
"""

import re

import numpy as np

from keras_clip.encoders.eva_vision import EVAVisionTransformer
from keras_clip.models.preprocessing import OPENAI_MEAN
from keras_clip.models.preprocessing import OPENAI_STD
from keras_clip.models.timm_eva import TIMM_EVA_FAMILIES
from keras_clip.models.timm_eva import from_open_clip_eva_config
from keras_clip.models.timm_eva import parse_timm_eva_name
from keras_clip.pretrained.configs import timm_model_cfg
from keras_clip.pretrained.layouts import openai_text_entries
from keras_clip.pretrained.weight_map import batch_norm
from keras_clip.pretrained.weight_map import biased_conv
from keras_clip.pretrained.weight_map import conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import reshaped
from keras_clip.pretrained.weight_map import split_dense
from keras_clip.pretrained.weight_map import tensor

TRUNK = "visual.trunk."
VITAMIN_STEM = f"{TRUNK}patch_embed.backbone"
# Each family's preprocessing (open_clip's pretrained configs): mean, std,
# resize mode, interpolation.
PREPROCESSING = {
    "pe_core": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "squash", "bilinear"),
    "eva02_clip": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),
    "eva01": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),
    "vit_clip": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),  # MobileCLIP2-L-14
    "vit_mci": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "shortest", "bilinear"),  # MobileCLIP-B
    "vit_gap": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),  # vit_medium_patch16_gap_256
    "vit_relpos": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),
    "vitamin": (OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"),
}
_ATTENTION = re.compile(r"(.*blocks\.\d+\.attn\.)(qkv\.weight|qkv\.bias|q_bias|v_bias)$")


def is_eva_model(model):
    return isinstance(getattr(model, "image_encoder", None), EVAVisionTransformer)


def _fused_layout(timm_model_name):
    """ "qkv" (one biased Linear), "qkv_qv_bias" (bias-free, with q_bias and
    v_bias) or None (separate q/k/v Linears) for a timm name."""
    family, size, _, _ = parse_timm_eva_name(timm_model_name)
    if family in ("pe_core", "vit_clip", "vit_mci", "vit_gap", "vit_relpos", "vitamin"):
        return "qkv"
    if family == "eva01" or size == "enormous":
        return "qkv_qv_bias"
    return None


def eva_shape(config, tensors):
    """Shape fields of an EVA-family config; the image tower's sizes are the
    checkpoint's (so shrunken towers of a timm family load too)."""
    name = f"{TRUNK}blocks.0.norm1.weight"
    if name not in tensors:
        return from_open_clip_eva_config(config)
    width = tensors[name].shape[0]
    layers = len({k.split(".")[3] for k in tensors if k.startswith(f"{TRUNK}blocks.")})
    mlp = next(
        tensors[f"{TRUNK}blocks.0.mlp.{fc}.weight"]
        for fc in ("fc1", "fc1_x", "w1")
        if f"{TRUNK}blocks.0.mlp.{fc}.weight" in tensors
    )
    shape = from_open_clip_eva_config(config, (width, layers, mlp.shape[0]))
    relative = f"{TRUNK}blocks.0.attn.rel_pos.mlp.fc1.weight"
    if relative in tensors:  # timm's rel_pos_dim
        shape["vision_relative_position_hidden"] = tensors[relative].shape[0]
    if f"{VITAMIN_STEM}.stem.conv1.weight" in tensors:
        shape["vision_vitamin_stem"] = _vitamin_stem_shape(tensors)
    return shape


def _vitamin_stem_shape(tensors):
    """`ViTaminStem`'s widths and depths, as a checkpoint's tensors give them."""
    stages = f"{VITAMIN_STEM}.stages."
    blocks = {tuple(k[len(stages) :].split(".")[:2]) for k in tensors if k.startswith(stages)}
    depths = [len({b for s, b in blocks if s == str(stage)}) for stage in (0, 1)]
    return {
        "stem_width": tensors[f"{VITAMIN_STEM}.stem.conv1.weight"].shape[0],
        "stage_widths": [tensors[f"{stages}{s}.0.conv3_1x1.weight"].shape[0] for s in (0, 1)],
        "stage_depths": depths,
    }


def eva_preprocessing(timm_model_name):
    """(mean, std, resize mode, interpolation) open_clip pairs with a family."""
    return PREPROCESSING[parse_timm_eva_name(timm_model_name)[0]]


def split_attention(tensors):
    """timm's fused query/key/value tensors as separate q/k/v_proj ones."""
    out = {}
    for name, array in tensors.items():
        match = _ATTENTION.match(name)
        if match is None:
            out[name] = array
            continue
        prefix, part = match.groups()
        if part in ("q_bias", "v_bias"):
            out[f"{prefix}{part[0]}_proj.bias"] = array
            continue
        kind = part.split(".")[1]
        for letter, piece in zip("qkv", np.split(np.asarray(array), 3, axis=0)):
            out[f"{prefix}{letter}_proj.{kind}"] = piece
    return out


def join_attention(tensors, timm_model_name):
    """The inverse of `split_attention`, in the timm name's form."""
    layout = _fused_layout(timm_model_name)
    if layout is None:
        return dict(tensors)
    out = {}
    for name, array in tensors.items():
        match = re.match(r"(.*blocks\.\d+\.attn\.)([qkv])_proj\.(weight|bias)$", name)
        if match is None:
            out[name] = array
            continue
        prefix, letter, kind = match.groups()
        if kind == "bias" and layout == "qkv_qv_bias":
            out[f"{prefix}{letter}_bias"] = array
        elif letter == "q":
            parts = [tensors[f"{prefix}{p}_proj.{kind}"] for p in "qkv"]
            out[f"{prefix}qkv.{kind}"] = np.concatenate(parts, axis=0)
    return out


def _block_entries(block, prefix):
    attention = block.attention
    entries = layer_norm(block.norm1, f"{prefix}.norm1")
    for layer, name in (
        (attention.query_dense, "q_proj"),
        (attention.key_dense, "k_proj"),
        (attention.value_dense, "v_proj"),
    ):
        entries += dense(layer, f"{prefix}.attn.{name}.weight", f"{prefix}.attn.{name}.bias")
    if attention.norm is not None:
        entries += layer_norm(attention.norm, f"{prefix}.attn.norm")
    entries += dense(attention.output_dense, f"{prefix}.attn.proj")
    entries += layer_norm(block.norm2, f"{prefix}.norm2")
    output = "fc2"
    if block.mlp == "swiglu":
        entries += dense(block.gate_dense, f"{prefix}.mlp.fc1_g")
        entries += dense(block.hidden_dense, f"{prefix}.mlp.fc1_x")
    elif block.mlp == "geglu":  # ViTamin's GeGluMlp
        entries += layer_norm(block.mlp_input_norm, f"{prefix}.mlp.norm")
        entries += dense(block.gate_dense, f"{prefix}.mlp.w0")
        entries += dense(block.hidden_dense, f"{prefix}.mlp.w1")
        output = "w2"
    else:
        entries += dense(block.hidden_dense, f"{prefix}.mlp.fc1")
    if block.hidden_norm is not None:
        entries += layer_norm(block.hidden_norm, f"{prefix}.mlp.norm")
    entries += dense(block.output_dense, f"{prefix}.mlp.{output}")
    if attention.rel_pos is not None:
        entries += dense(attention.rel_pos.hidden_dense, f"{prefix}.attn.rel_pos.mlp.fc1")
        entries += dense(attention.rel_pos.output_dense, f"{prefix}.attn.rel_pos.mlp.fc2")
    if block.attention_scale is not None:
        entries.append(tensor(block.attention_scale, f"{prefix}.ls1.gamma"))
        entries.append(tensor(block.mlp_scale, f"{prefix}.ls2.gamma"))
    return entries


def _stem_entries(stem, prefix):
    entries = []
    for index, convolution in enumerate(stem.convolutions):
        entries += conv(convolution, f"{prefix}.{index}.conv.weight")
        if index < 2:
            entries += batch_norm(stem.norms[index], f"{prefix}.{index}.bn")
    return entries + [tensor(stem.convolutions[2].bias, f"{prefix}.2.conv.bias")]


def _vitamin_stem_entries(stem):
    entries = biased_conv(stem.stem_conv1, f"{VITAMIN_STEM}.stem.conv1")
    entries += layer_norm(stem.stem_norm, f"{VITAMIN_STEM}.stem.norm1")
    entries += biased_conv(stem.stem_conv2, f"{VITAMIN_STEM}.stem.conv2")
    for s, stage in enumerate(stem.stages):
        for d, block in enumerate(stage):
            prefix = f"{VITAMIN_STEM}.stages.{s}.{d}"
            if block.shortcut is not None:  # after the pool (timm's Downsample2d) at stride 2
                name = "shortcut.expand" if block.strides == 2 else "shortcut"
                entries += biased_conv(block.shortcut, f"{prefix}.{name}")
            entries += layer_norm(block.pre_norm, f"{prefix}.pre_norm")
            entries += biased_conv(block.expand, f"{prefix}.conv1_1x1")
            entries += biased_conv(block.depthwise, f"{prefix}.conv2_kxk", depthwise=True)
            entries += biased_conv(block.project, f"{prefix}.conv3_1x1")
    entries += layer_norm(stem.pool_norm, f"{VITAMIN_STEM}.pool.norm")
    return entries + biased_conv(stem.pool_conv, f"{VITAMIN_STEM}.pool.proj")


def eva_weight_map(model):
    """Entries for open_clip's names of an EVA-family `CustomTextCLIP`, q/k/v
    apart (`split_attention`)."""
    vision = model.image_encoder
    width = vision.width
    if vision.stem == "convolutional":
        entries = _stem_entries(vision.patch_embedding, f"{TRUNK}patch_embed.backbone")
    elif vision.stem == "vitamin":
        entries = _vitamin_stem_entries(vision.patch_embedding)
    else:
        entries = conv(vision.patch_embedding, f"{TRUNK}patch_embed.proj.weight")
        if vision.patch_bias:
            entries.append(tensor(vision.patch_embedding.bias, f"{TRUNK}patch_embed.proj.bias"))
    if vision.class_token:
        entries.append(reshaped(vision.class_embedding, f"{TRUNK}cls_token", (1, 1, width)))
    if vision.positional_embedding is not None:
        tokens = vision.positional_embedding.shape[0]
        entries.append(
            reshaped(vision.positional_embedding, f"{TRUNK}pos_embed", (1, tokens, width))
        )
    if vision.pre_layer_norm is not None:
        entries += layer_norm(vision.pre_layer_norm, f"{TRUNK}norm_pre")
    for i, block in enumerate(vision.blocks):
        entries += _block_entries(block, f"{TRUNK}blocks.{i}")
    final_norm = "fc_norm" if vision.norm_after_pool else "norm"
    entries += layer_norm(vision.final_norm, f"{TRUNK}{final_norm}")
    if vision.pool is not None:
        pool, prefix = vision.pool, f"{TRUNK}attn_pool"
        entries += [tensor(pool.probe, f"{prefix}.latent")]
        entries += split_dense(
            pool.in_projection, [f"{prefix}.q", f"{prefix}.kv"], (width, 2 * width)
        )
        entries += dense(pool.out_projection, f"{prefix}.proj")
        entries += layer_norm(pool.norm, f"{prefix}.norm")
        entries += dense(pool.mlp_hidden, f"{prefix}.mlp.fc1")
        entries += dense(pool.mlp_output, f"{prefix}.mlp.fc2")
    facts = _family_facts(vision.timm_model_name)
    if facts.get("projection") == "linear":  # open_clip's TimmModel head
        entries += dense(vision.head, "visual.head.proj.weight")
    else:  # timm's classifier head
        entries += dense(vision.head, f"{TRUNK}head")
    text_prefix = "text." if facts.get("custom_text", True) else ""
    return entries + openai_text_entries(model, prefix=text_prefix)


def _family_facts(timm_model_name):
    parsed = parse_timm_eva_name(timm_model_name) if timm_model_name else None
    return TIMM_EVA_FAMILIES[parsed[0]] if parsed else {}


def to_open_clip_eva_config(model):
    """open_clip's model config of an EVA-family keras-clip `CLIP`."""
    facts = _family_facts(model.image_encoder.timm_model_name)
    return timm_model_cfg(
        model,
        facts.get("pool"),
        facts.get("projection"),
        custom_text=facts.get("custom_text", True),
    )
