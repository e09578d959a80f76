"""The tensor names of OpenAI / open_clip and Hugging Face CLIP checkpoints.

`openai_weight_map(model)` and `huggingface_weight_map(model)` list, for a
keras-clip `CLIP` built with the checkpoint's shape, which tensor of that
layout each variable is made from (see `weight_map`). OpenAI's original
files and open_clip's state dicts share one layout ("visual.conv1.weight",
"transformer.resblocks.0.attn.in_proj_weight", ...); Hugging Face's
`CLIPModel` stores query, key and value apart and names everything anew
("vision_model.encoder.layers.0.self_attn.q_proj.weight", ...).
"""

from keras_clip.encoders.modified_resnet import ModifiedResNet
from keras_clip.pretrained.weight_map import batch_norm
from keras_clip.pretrained.weight_map import conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import split_dense
from keras_clip.pretrained.weight_map import tensor

# Present in some checkpoints, never weights: OpenAI's TorchScript files
# keep their shape settings, Hugging Face older files a position-id buffer.
OPENAI_NON_WEIGHTS = ("input_resolution", "context_length", "vocab_size")


def is_non_weight(name):
    return (
        name in OPENAI_NON_WEIGHTS
        or name.endswith("position_ids")
        or name.endswith("num_batches_tracked")
        or name.endswith("attn_mask")
    )


def openai_block(block, prefix):
    """A TransformerBlock from OpenAI's residual attention block names (and
    open_clip's LayerScale, `ls_1` / `ls_2`)."""
    entries = (
        layer_norm(block.attention_norm, f"{prefix}.ln_1")
        + dense(
            block.attention.qkv_dense,
            f"{prefix}.attn.in_proj_weight",
            f"{prefix}.attn.in_proj_bias",
        )
        + dense(block.attention.output_dense, f"{prefix}.attn.out_proj")
        + layer_norm(block.mlp_norm, f"{prefix}.ln_2")
        + dense(block.mlp_hidden, f"{prefix}.mlp.c_fc")
        + dense(block.mlp_output, f"{prefix}.mlp.c_proj")
    )
    if block.attention_scale is not None:
        entries.append(tensor(block.attention_scale, f"{prefix}.ls_1.gamma"))
        entries.append(tensor(block.mlp_scale, f"{prefix}.ls_2.gamma"))
    return entries


def huggingface_block(block, prefix):
    """A TransformerBlock from Hugging Face's CLIP/SigLIP encoder layer names."""
    attention = f"{prefix}.self_attn"
    return (
        layer_norm(block.attention_norm, f"{prefix}.layer_norm1")
        + split_dense(block.attention.qkv_dense, [f"{attention}.{p}_proj" for p in "qkv"])
        + dense(block.attention.output_dense, f"{attention}.out_proj")
        + layer_norm(block.mlp_norm, f"{prefix}.layer_norm2")
        + dense(block.mlp_hidden, f"{prefix}.mlp.fc1")
        + dense(block.mlp_output, f"{prefix}.mlp.fc2")
    )


def _named(layers, name):
    return next(layer for layer in layers if layer.name == name)


def _openai_resnet(encoder):
    entries = []
    for index in (1, 2, 3):
        entries += conv(_named(encoder.stem, f"stem_{index}_conv"), f"visual.conv{index}.weight")
        entries += batch_norm(_named(encoder.stem, f"stem_{index}_bn"), f"visual.bn{index}")
    for block in encoder.stages:
        stage, position = block.name[len("layer") :].split("_")
        prefix = f"visual.layer{stage}.{position}"
        for index in (1, 2, 3):
            entries += conv(_named(block.main, f"{index}_conv"), f"{prefix}.conv{index}.weight")
            entries += batch_norm(_named(block.main, f"{index}_bn"), f"{prefix}.bn{index}")
        if block.shortcut:
            entries += conv(
                _named(block.shortcut, "downsample_conv"), f"{prefix}.downsample.0.weight"
            )
            entries += batch_norm(_named(block.shortcut, "downsample_bn"), f"{prefix}.downsample.1")
    pool = encoder.attention_pool
    entries.append(tensor(pool.position_embedding, "visual.attnpool.positional_embedding"))
    for layer, name in (
        (pool.query_dense, "q_proj"),
        (pool.key_dense, "k_proj"),
        (pool.value_dense, "v_proj"),
        (pool.output_dense, "c_proj"),
    ):
        entries += dense(layer, f"visual.attnpool.{name}.weight", f"visual.attnpool.{name}.bias")
    return entries


def openai_weight_map(model):
    """Entries for OpenAI's (and open_clip's) CLIP state-dict names."""
    return openai_vision_entries(model) + openai_text_entries(model)


def openai_vision_entries(model):
    """The image tower and its projection under OpenAI's `visual.*` names."""
    vision = model.image_encoder
    if isinstance(vision, ModifiedResNet):
        entries = _openai_resnet(vision)
    else:
        entries = conv(vision.patch_embedding, "visual.conv1.weight") + [
            tensor(vision.class_embedding, "visual.class_embedding"),
            tensor(vision.positional_embedding, "visual.positional_embedding"),
        ]
        if vision.pre_layer_norm is not None:
            entries += layer_norm(vision.pre_layer_norm, "visual.ln_pre")
        for i, block in enumerate(vision.blocks):
            entries += openai_block(block, f"visual.transformer.resblocks.{i}")
        entries += layer_norm(vision.post_norm, "visual.ln_post")
        entries.append(tensor(model.image_projection.kernel, "visual.proj"))
    return entries


def openai_text_entries(model, prefix=""):
    """The text tower, text projection and logit scale (and bias) under
    OpenAI's names, after `prefix` ("text." in open_clip's CustomTextCLIP,
    where the logit scale and bias stay at the top level)."""
    text = model.text_encoder
    entries = [
        tensor(text.token_embedding.embeddings, f"{prefix}token_embedding.weight"),
        tensor(text.positional_embedding, f"{prefix}positional_embedding"),
    ]
    for i, block in enumerate(text.blocks):
        entries += openai_block(block, f"{prefix}transformer.resblocks.{i}")
    entries += layer_norm(text.final_norm, f"{prefix}ln_final")
    entries += [
        tensor(model.text_projection.kernel, f"{prefix}text_projection"),
        tensor(model.objective.log_logit_scale, "logit_scale"),
    ]
    if model.logit_bias is not None:  # open_clip's init_logit_bias models
        entries.append(tensor(model.objective.logit_bias, "logit_bias"))
    return entries


def huggingface_weight_map(model):
    """Entries for Hugging Face `CLIPModel` names (ViT image towers only:
    `configs.to_huggingface_config` refuses what CLIPModel cannot hold)."""
    vision, text = model.image_encoder, model.text_encoder
    v, t = "vision_model", "text_model"
    entries = (
        conv(vision.patch_embedding, f"{v}.embeddings.patch_embedding.weight")
        + [
            tensor(vision.class_embedding, f"{v}.embeddings.class_embedding"),
            tensor(vision.positional_embedding, f"{v}.embeddings.position_embedding.weight"),
        ]
        + layer_norm(vision.pre_layer_norm, f"{v}.pre_layrnorm")
    )
    for i, block in enumerate(vision.blocks):
        entries += huggingface_block(block, f"{v}.encoder.layers.{i}")
    entries += layer_norm(vision.post_norm, f"{v}.post_layernorm")
    entries += [
        tensor(text.token_embedding.embeddings, f"{t}.embeddings.token_embedding.weight"),
        tensor(text.positional_embedding, f"{t}.embeddings.position_embedding.weight"),
    ]
    for i, block in enumerate(text.blocks):
        entries += huggingface_block(block, f"{t}.encoder.layers.{i}")
    entries += layer_norm(text.final_norm, f"{t}.final_layer_norm")
    entries += (
        dense(model.image_projection, "visual_projection.weight")
        + dense(model.text_projection, "text_projection.weight")
        + [tensor(model.objective.log_logit_scale, "logit_scale")]
    )
    return entries
