"""keras-hub CLIP presets (a `CLIPBackbone` saved in Keras format).

keras-hub builds the preset's `CLIPBackbone` from the local directory (no
download); its variables are then mapped onto a keras-clip `CLIP` of the
same shape with the strict checks of `weight_map`. keras-hub keeps query,
key and value as (width, heads, head_dim) kernels and pools text at the
largest token id, which `end_token_id=None` reproduces.
"""

import json
import os

import numpy as np
from keras import ops

from keras_clip.pretrained.weight_map import Entry
from keras_clip.pretrained.weight_map import tensor


def is_keras_hub_preset(config):
    """Whether a directory's parsed config.json is a keras-hub preset's."""
    return "keras_hub" in str(config.get("registered_name", "")) or str(
        config.get("module", "")
    ).startswith("keras_hub")


def read_keras_hub_preset(path):
    """(shape fields, tensors, preprocessing mean/std or None) of a preset."""
    import keras_hub

    backbone = keras_hub.models.CLIPBackbone.from_preset(path)
    vision, text = backbone.vision_encoder, backbone.text_encoder
    activations = {vision.intermediate_activation, text.intermediate_activation}
    if len(activations) > 1 or not activations <= {"quick_gelu", "gelu"}:
        raise ValueError(f"{path}: unsupported activations {sorted(activations)}.")
    shape = dict(
        vision="vit",
        image_size=vision.image_shape[0],
        patch_size=vision.patch_size,
        vision_width=vision.hidden_dim,
        vision_layers=vision.num_layers,
        vision_heads=vision.num_heads,
        vision_mlp_ratio=vision.intermediate_dim / vision.hidden_dim,
        embed_dim=backbone.projection_dim,
        vocabulary_size=text.vocabulary_size,
        context_length=text.max_sequence_length,
        text_width=text.hidden_dim,
        text_layers=text.num_layers,
        text_heads=text.num_heads,
        text_mlp_ratio=text.intermediate_dim / text.hidden_dim,
        end_token_id=None,
        activation=activations.pop(),
    )
    tensors = {}
    for key, encoder in (("vision_encoder", vision), ("text_encoder", text)):
        prefix = f"{encoder.name}_"
        for variable in encoder.weights:
            name = variable.path.split("/", 1)
            name[0] = name[0][len(prefix) :] if name[0].startswith(prefix) else name[0]
            tensors[f"{key}/{'/'.join(name)}"] = ops.convert_to_numpy(variable)
    # keras-hub looks the vision position embeddings up by its stored
    # `position_ids` (an arange in converted presets): the rows used, in order.
    positions = "vision_encoder/embedding/position_embedding/embeddings"
    ids = tensors.pop("vision_encoder/embedding/position_ids").reshape(-1).astype("int64")
    tensors[positions] = tensors[positions][ids]
    for layer in (backbone.vision_projection, backbone.text_projection, backbone.clip_head):
        for variable in layer.weights:
            tensors[variable.path] = ops.convert_to_numpy(variable)
    return shape, tensors, _mean_and_std(path)


def _mean_and_std(path):
    """From preprocessor.json's image converter (x * scale + offset)."""
    preprocessor = os.path.join(path, "preprocessor.json")
    if not os.path.isfile(preprocessor):
        return None
    with open(preprocessor) as f:
        config = json.load(f).get("config", {})
    converter = config.get("image_converter", {}).get("config", {})
    scale, offset = converter.get("scale"), converter.get("offset")
    if not (isinstance(scale, list) and isinstance(offset, list)):
        return None
    std = 1.0 / (255.0 * np.asarray(scale, "float64"))
    mean = -np.asarray(offset, "float64") * std
    return tuple(mean.tolist()), tuple(std.tolist())


def _heads_kernel(dense, names):
    """A fused (width, 3 * width) Dense from (width, heads, head_dim) kernels."""
    return Entry(
        dense.kernel,
        names,
        lambda *a: np.concatenate([x.reshape(x.shape[0], -1) for x in a], axis=1),
        None,
    )


def _block(block, prefix):
    attention = f"{prefix}/attention"
    kinds = ("query", "key", "value")
    return [
        tensor(block.attention_norm.gamma, f"{prefix}/layer_norm_1/gamma"),
        tensor(block.attention_norm.beta, f"{prefix}/layer_norm_1/beta"),
        _heads_kernel(block.attention.qkv_dense, tuple(f"{attention}/{k}/kernel" for k in kinds)),
        Entry(
            block.attention.qkv_dense.bias,
            tuple(f"{attention}/{k}/bias" for k in kinds),
            lambda *a: np.concatenate([x.reshape(-1) for x in a]),
            None,
        ),
        Entry(
            block.attention.output_dense.kernel,
            (f"{attention}/attention_output/kernel",),
            lambda a: a.reshape(-1, a.shape[-1]),
            None,
        ),
        tensor(block.attention.output_dense.bias, f"{attention}/attention_output/bias"),
        tensor(block.mlp_norm.gamma, f"{prefix}/layer_norm_2/gamma"),
        tensor(block.mlp_norm.beta, f"{prefix}/layer_norm_2/beta"),
        tensor(block.mlp_hidden.kernel, f"{prefix}/dense_1/kernel"),
        tensor(block.mlp_hidden.bias, f"{prefix}/dense_1/bias"),
        tensor(block.mlp_output.kernel, f"{prefix}/dense_2/kernel"),
        tensor(block.mlp_output.bias, f"{prefix}/dense_2/bias"),
    ]


def keras_hub_weight_map(model):
    """Entries from a keras-hub `CLIPBackbone`'s variables (read only)."""
    vision, text = model.image_encoder, model.text_encoder
    v, t = "vision_encoder", "text_encoder"
    entries = [
        tensor(vision.patch_embedding.kernel, f"{v}/embedding/patch_embedding/kernel"),
        tensor(vision.class_embedding, f"{v}/embedding/class_embedding"),
        tensor(vision.positional_embedding, f"{v}/embedding/position_embedding/embeddings"),
        tensor(vision.pre_layer_norm.gamma, f"{v}/pre_layer_norm/gamma"),
        tensor(vision.pre_layer_norm.beta, f"{v}/pre_layer_norm/beta"),
    ]
    for i, block in enumerate(vision.blocks):
        entries += _block(block, f"{v}/encoder_block_{i}")
    entries += [
        tensor(vision.post_norm.gamma, f"{v}/layer_norm/gamma"),
        tensor(vision.post_norm.beta, f"{v}/layer_norm/beta"),
        tensor(text.token_embedding.embeddings, f"{t}/embedding/token_embedding/embeddings"),
        tensor(text.positional_embedding, f"{t}/embedding/position_embedding/embeddings"),
    ]
    for i, block in enumerate(text.blocks):
        entries += _block(block, f"{t}/encoder_block_{i}")
    entries += [
        tensor(text.final_norm.gamma, f"{t}/layer_norm/gamma"),
        tensor(text.final_norm.beta, f"{t}/layer_norm/beta"),
        tensor(model.image_projection.kernel, "vision_projection/kernel"),
        tensor(model.text_projection.kernel, "text_projection/kernel"),
        tensor(model.objective.log_logit_scale, "clip_head/logit_scale"),
    ]
    return entries
