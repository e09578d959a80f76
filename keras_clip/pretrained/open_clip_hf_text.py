"""open_clip's CLIPs with a Hugging Face text tower: XLM-RoBERTa
(`xlm-roberta-base-ViT-B-32`, `xlm-roberta-large-ViT-H-14`), mT5
(`mt5-base-ViT-B-32`, `mt5-xl-ViT-H-14`) and NLLB's M2M100 encoder
(`nllb-clip-base`, `nllb-clip-large`): tensor names and the config written
back.

open_clip builds them as a `CustomTextCLIP`: the image tower under
`visual.*` as in CLIP, and `text.transformer.*` (transformers'
`XLMRobertaModel` without its pooler, or `MT5Model`'s encoder stack) with
`text.proj.*` (a bias-free MLP or Linear); NLLB's is
`M2M100Model.encoder`, its sinusoidal positions a buffer that is not
stored. XLM-R's and NLLB's query, key and value are
separate Linears there and one fused Dense here (`split_dense`); T5's
relative-position bias lives in its first block there and in the tower here.

Example:

```python
model = keras_clip.CLIP.from_pretrained("xlm-roberta-base-ViT-B-32/")   # open_clip's files
model.save_pretrained("out/", format="open_clip")    # the same tensors and text_cfg
```
"""

from keras import ops

from keras_clip.encoders.hf_text_tower import HFTextTower
from keras_clip.encoders.m2m100_text import M2M100TextEncoder
from keras_clip.encoders.siglip_vision import SigLIPVisionTransformer
from keras_clip.encoders.t5_text import T5TextEncoder
from keras_clip.models.timm_siglip import to_open_clip_siglip_vision_cfg
from keras_clip.pretrained.configs import open_clip_vision_cfg
from keras_clip.pretrained.configs import vision_shape
from keras_clip.pretrained.layouts import openai_vision_entries
from keras_clip.pretrained.open_clip_siglip import timm_siglip_vision_entries
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import split_dense
from keras_clip.pretrained.weight_map import tensor

TEXT = "text.transformer."
_QKV = ("query", "key", "value")
_HEAD_NAMES = {"proj_0": "text.proj.0.weight", "proj_2": "text.proj.2.weight"}


def is_hf_text_model(model):
    return isinstance(model.text_encoder, HFTextTower)


def _block_entries(block, prefix):
    attention = f"{prefix}.attention"
    return (
        split_dense(block.attention.qkv_dense, [f"{attention}.self.{p}" for p in _QKV])
        + dense(block.attention.output_dense, f"{attention}.output.dense")
        + layer_norm(block.attention_norm, f"{attention}.output.LayerNorm")
        + dense(block.mlp_hidden, f"{prefix}.intermediate.dense")
        + dense(block.mlp_output, f"{prefix}.output.dense")
        + layer_norm(block.mlp_norm, f"{prefix}.output.LayerNorm")
    )


def _t5_block_entries(block, prefix):
    attention, mlp = f"{prefix}.layer.0", f"{prefix}.layer.1"
    entries = [tensor(block.attention_norm.scale, f"{attention}.layer_norm.weight")]
    for layer in (block.query_dense, block.key_dense, block.value_dense, block.output_dense):
        entries += dense(layer, f"{attention}.SelfAttention.{layer.name}.weight")
    entries.append(tensor(block.mlp_norm.scale, f"{mlp}.layer_norm.weight"))
    for layer in (block.gate_dense, block.hidden_dense, block.mlp_output):
        entries += dense(layer, f"{mlp}.DenseReluDense.{layer.name}.weight")
    return entries


def _t5_entries(text):
    entries = [
        tensor(text.token_embedding.embeddings, f"{TEXT}embed_tokens.weight"),
        tensor(
            text.relative_attention_bias,
            f"{TEXT}block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        ),
    ]
    for i, block in enumerate(text.blocks):
        entries += _t5_block_entries(block, f"{TEXT}block.{i}")
    return entries + [tensor(text.final_norm.scale, f"{TEXT}final_layer_norm.weight")]


def _m2m100_entries(text):
    entries = [tensor(text.token_embedding.embeddings, f"{TEXT}embed_tokens.weight")]
    for i, block in enumerate(text.blocks):
        prefix = f"{TEXT}layers.{i}"
        attention = f"{prefix}.self_attn"
        entries += layer_norm(block.attention_norm, f"{prefix}.self_attn_layer_norm")
        entries += split_dense(block.attention.qkv_dense, [f"{attention}.{p}_proj" for p in "qkv"])
        entries += dense(block.attention.output_dense, f"{attention}.out_proj")
        entries += layer_norm(block.mlp_norm, f"{prefix}.final_layer_norm")
        entries += dense(block.mlp_hidden, f"{prefix}.fc1")
        entries += dense(block.mlp_output, f"{prefix}.fc2")
    return entries + layer_norm(text.final_norm, f"{TEXT}layer_norm")


def _roberta_entries(text):
    embeddings = f"{TEXT}embeddings."
    entries = [
        tensor(text.token_embedding.embeddings, f"{embeddings}word_embeddings.weight"),
        tensor(text.position_embedding, f"{embeddings}position_embeddings.weight"),
        tensor(text.token_type_embedding, f"{embeddings}token_type_embeddings.weight"),
    ]
    entries += layer_norm(text.embedding_norm, f"{embeddings}LayerNorm")
    for i, block in enumerate(text.blocks):
        entries += _block_entries(block, f"{TEXT}encoder.layer.{i}")
    return entries


def hf_text_weight_map(model):
    """Entries for open_clip's names of a CustomTextCLIP with a Hugging Face
    text tower (XLM-RoBERTa, mT5, NLLB)."""
    if isinstance(model.image_encoder, SigLIPVisionTransformer):  # NLLB-SigLIP
        entries = timm_siglip_vision_entries(model.image_encoder)
    else:
        entries = openai_vision_entries(model)
    return entries + hf_text_entries(model)


def hf_text_entries(model):
    """The Hugging Face text tower and its projection under open_clip's
    `text.*` names, and the logit scale (and bias) at the top level; a
    CoCa's too (coca_roberta-ViT-B-32)."""
    text = model.text_encoder
    if isinstance(text, T5TextEncoder):
        entries = _t5_entries(text)
    elif isinstance(text, M2M100TextEncoder):
        entries = _m2m100_entries(text)
    else:
        entries = _roberta_entries(text)
    for layer in text.head:
        name = _HEAD_NAMES.get(layer.name, "text.proj.weight")
        entries += dense(layer, name)
    entries.append(tensor(model.objective.log_logit_scale, "logit_scale"))
    if model.logit_bias is not None:  # a sigmoid model's (NLLB-SigLIP)
        entries.append(tensor(model.logit_bias, "logit_bias"))
    return entries


def to_open_clip_hf_text_config(model):
    """open_clip's model config of a keras-clip CLIP with a Hugging Face text tower."""
    text = model.text_encoder
    name = text.hf_model_name or "xlm-roberta-base"
    if isinstance(model.image_encoder, SigLIPVisionTransformer):
        image = {"vision_cfg": to_open_clip_siglip_vision_cfg(model.image_encoder)}
    else:
        image = {
            "quick_gelu": model.image_encoder.activation == "quick_gelu",
            "vision_cfg": open_clip_vision_cfg(vision_shape(model)),
        }
    if model.logit_bias is not None:
        image["init_logit_bias"] = float(ops.convert_to_numpy(model.logit_bias))
    return {
        "embed_dim": model.embed_dim,
        "custom_text": True,
        **image,
        "text_cfg": {
            "hf_model_name": name,
            "hf_tokenizer_name": name,
            "hf_pooler_type": "cls_pooler"
            if getattr(text, "pooling", "mean") == "cls"
            else "mean_pooler",
            "hf_proj_type": text.projection,
            "context_length": text.context_length,
        },
    }
