"""open_clip's CoCa checkpoints: tensors in and out.

The towers keep CLIP's names (`visual.*`; the text tower under `text.*`,
CustomTextCLIP's layout, with its class token `text.cls_emb`), the image
tower's pooler is `visual.attn_pool.*` and the decoder `text_decoder.*`
(`resblocks.N` self-attention blocks, `cross_attn.N` cross-attention
blocks, `ln_final`, `text_projection`). PyTorch's `nn.MultiheadAttention`
fuses the query, key and value weights (`in_proj_weight`) when the keys are
as wide as the queries, and keeps them apart (`q_proj_weight`, ...) when
not; its biases are always one `in_proj_bias`. `split_attention` reads
both forms into one per projection and `join_attention` writes PyTorch's.

Example:

```python
model = keras_clip.CLIP.from_pretrained("coca_ViT-B-32/")  # open_clip directory: a CoCa
model.save_pretrained("tuned/", format="open_clip")
```
"""

import re

import numpy as np

from keras_clip.pretrained.configs import model_shape
from keras_clip.pretrained.configs import to_open_clip_config
from keras_clip.pretrained.layouts import openai_block
from keras_clip.pretrained.layouts import openai_text_entries
from keras_clip.pretrained.layouts import openai_vision_entries
from keras_clip.pretrained.open_clip_hf_text import hf_text_entries
from keras_clip.pretrained.open_clip_hf_text import is_hf_text_model
from keras_clip.pretrained.open_clip_hf_text import to_open_clip_hf_text_config
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import tensor

# The attention modules whose keys may be of another width (PyTorch MHA).
_CROSS = re.compile(r"^((?:visual\.attn_pool|text_decoder\.cross_attn\.\d+)\.attn\.)(.+)$")


def is_coca_model(model):
    return hasattr(model, "text_decoder")


def split_attention(tensors):
    """`in_proj_weight` / `in_proj_bias` of the cross-attentions as
    `{q,k,v}_proj_weight` / `{q,k,v}_proj_bias`."""
    out = {}
    for name, array in tensors.items():
        match = _CROSS.match(name)
        if match is None or match[2] not in ("in_proj_weight", "in_proj_bias"):
            out[name] = array
            continue
        kind = match[2].split("_")[-1]
        for letter, piece in zip("qkv", np.split(np.asarray(array), 3, axis=0)):
            out[f"{match[1]}{letter}_proj_{kind}"] = piece
    return out


def join_attention(tensors):
    """The inverse of `split_attention`, in PyTorch's form: weights fused
    when all three are of one shape, the biases always."""
    out = {}
    for name, array in tensors.items():
        match = _CROSS.match(name)
        if match is None or not re.fullmatch(r"[qkv]_proj_(weight|bias)", match[2]):
            out[name] = array
            continue
        prefix, letter, kind = match[1], match[2][0], match[2].split("_")[-1]
        parts = [tensors[f"{prefix}{p}_proj_{kind}"] for p in "qkv"]
        if kind == "weight" and len({part.shape for part in parts}) > 1:
            out[name] = array
        elif letter == "q":
            out[f"{prefix}in_proj_{kind}"] = np.concatenate(parts, axis=0)
    return out


def _cross_attention(attention, prefix):
    entries = []
    for letter, layer in zip(
        "qkv", (attention.query_dense, attention.key_dense, attention.value_dense)
    ):
        entries += dense(layer, f"{prefix}.{letter}_proj_weight", f"{prefix}.{letter}_proj_bias")
    return entries + dense(attention.output_dense, f"{prefix}.out_proj")


def coca_weight_map(model):
    """Entries for open_clip's names of a `CoCa` (after `split_attention`)."""
    entries = openai_vision_entries(model)
    pool = model.image_encoder.attention_pool
    if pool is not None:
        entries.append(tensor(pool.queries, "visual.attn_pool.query"))
        entries += _cross_attention(pool.attention, "visual.attn_pool.attn")
        entries += layer_norm(pool.query_norm, "visual.attn_pool.ln_q")
        entries += layer_norm(pool.token_norm, "visual.attn_pool.ln_k")
    if is_hf_text_model(model):  # coca_roberta-ViT-B-32
        entries += hf_text_entries(model)
    else:
        entries += openai_text_entries(model, prefix="text.")
        if model.text_encoder.class_token:
            entries.append(tensor(model.text_encoder.class_embedding, "text.cls_emb"))
    decoder = model.text_decoder
    for i, (block, cross) in enumerate(
        zip(decoder.self_attention_blocks, decoder.cross_attention_blocks)
    ):
        entries += openai_block(block, f"text_decoder.resblocks.{i}")
        prefix = f"text_decoder.cross_attn.{i}"
        entries += layer_norm(cross.query_norm, f"{prefix}.ln_1")
        entries += layer_norm(cross.context_norm, f"{prefix}.ln_1_kv")
        entries += _cross_attention(cross.attention, f"{prefix}.attn")
        entries += layer_norm(cross.mlp_norm, f"{prefix}.ln_2")
        entries += dense(cross.mlp_hidden, f"{prefix}.mlp.c_fc")
        entries += dense(cross.mlp_output, f"{prefix}.mlp.c_proj")
        if cross.attention_scale is not None:
            entries.append(tensor(cross.attention_scale, f"{prefix}.ls_1.gamma"))
            entries.append(tensor(cross.mlp_scale, f"{prefix}.ls_2.gamma"))
    entries += layer_norm(decoder.final_norm, "text_decoder.ln_final")
    entries.append(tensor(decoder.logits_dense.kernel, "text_decoder.text_projection"))
    return entries


def to_open_clip_coca_config(model):
    """open_clip's model config of a keras-clip `CoCa`."""
    vision, text, decoder = model.image_encoder, model.text_encoder, model.text_decoder
    if is_hf_text_model(model):  # coca_roberta-ViT-B-32
        config = to_open_clip_hf_text_config(model)
        config["text_cfg"]["vocab_size"] = decoder.vocabulary_size  # the decoder's, in open_clip
    else:
        config = to_open_clip_config(model_shape(model))
        config["text_cfg"].update(embed_cls=text.class_token, pad_id=text.pad_token_id)
    config["vision_cfg"]["output_tokens"] = True
    if vision.attention_pool is not None:
        config["vision_cfg"].update(
            attentional_pool=True,
            attn_pooler_queries=vision.attention_pool.num_queries,
            attn_pooler_heads=vision.attention_pool.num_heads,
        )
    config["text_cfg"]["output_tokens"] = True
    config["multimodal_cfg"] = {
        "context_length": text.context_length,
        "vocab_size": decoder.vocabulary_size,
        "width": decoder.width,
        "heads": decoder.num_heads,
        "layers": decoder.num_layers,
    }
    if decoder.layer_scale_init is not None:
        config["multimodal_cfg"]["ls_init_value"] = decoder.layer_scale_init
    config["custom_text"] = True
    return config
