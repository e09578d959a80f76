"""keras-hub SigLIP presets (a `SigLIPBackbone` saved in Keras format).

keras-hub builds the preset's backbone from the local directory (no
download). Its variables are renamed and reshaped into Hugging Face
`SiglipModel` tensors (query, key and value kept as (width, heads,
head_dim) kernels become PyTorch Linear weights; the pooling head's three
become one `in_proj_weight`), so the preset loads through the same strict
weight map as a Hugging Face directory (`keras_clip.pretrained.siglip`).
"""

import re

import numpy as np
from keras import ops

from keras_clip.pretrained.keras_hub_preset import _mean_and_std

_ACTIVATIONS = {"gelu_approximate": "gelu_pytorch_tanh", "gelu": "gelu"}


def is_keras_hub_siglip(config):
    """Whether a preset's parsed config.json holds a `SigLIPBackbone`."""
    return config.get("class_name") == "SigLIPBackbone"


def _arrays(encoder):
    # Variables built in a preset's functional model carry the encoder's
    # name as a prefix ("sig_lip_vision_encoder_embedding/...").
    prefix = f"{encoder.name}_"
    found = {
        (v.path[len(prefix) :] if v.path.startswith(prefix) else v.path): ops.convert_to_numpy(v)
        for v in encoder.weights
    }
    # Position embeddings are looked up by the stored `position_ids`, where
    # the encoder keeps them as a variable.
    ids = found.pop("embedding/position_ids", None)
    if ids is not None:
        table = "embedding/position_embedding/embeddings"
        found[table] = found[table][ids.reshape(-1).astype("int64")]
    return found


def _linear(found, source, target, tensors):
    """A keras-hub Dense / EinsumDense (in, ..., out) as PyTorch's Linear."""
    kernel = found[f"{source}/kernel"]
    if kernel.ndim == 3 and source.endswith("attention_output"):
        kernel = kernel.reshape(-1, kernel.shape[-1])
    else:
        kernel = kernel.reshape(kernel.shape[0], -1)
    tensors[f"{target}.weight"] = np.ascontiguousarray(kernel.T)
    tensors[f"{target}.bias"] = found[f"{source}/bias"].reshape(-1)


def _norm(found, source, target, tensors):
    tensors[f"{target}.weight"] = found[f"{source}/gamma"]
    tensors[f"{target}.bias"] = found[f"{source}/beta"]


def _blocks(found, count, prefix, tensors):
    for i in range(count):
        block, layer = f"encoder_block_{i}", f"{prefix}.encoder.layers.{i}"
        for name in ("query", "key", "value"):
            _linear(
                found, f"{block}/self_attn/{name}", f"{layer}.self_attn.{name[0]}_proj", tensors
            )
        _linear(
            found, f"{block}/self_attn/attention_output", f"{layer}.self_attn.out_proj", tensors
        )
        _norm(found, f"{block}/layer_norm1", f"{layer}.layer_norm1", tensors)
        _norm(found, f"{block}/layer_norm2", f"{layer}.layer_norm2", tensors)
        _linear(found, f"{block}/mlp/fc1", f"{layer}.mlp.fc1", tensors)
        _linear(found, f"{block}/mlp/fc2", f"{layer}.mlp.fc2", tensors)


def read_keras_hub_siglip(path):
    """(Hugging Face SiglipConfig dict, SiglipModel tensors, mean/std or None)."""
    import keras_hub

    backbone = keras_hub.models.SigLIPBackbone.from_preset(path)
    vision, text = backbone.vision_encoder, backbone.text_encoder
    for encoder in (vision, text):
        if encoder.intermediate_activation not in _ACTIVATIONS:
            raise ValueError(f"{path}: unsupported activation {encoder.intermediate_activation!r}.")
    if text.embedding_dim != text.hidden_dim:
        raise ValueError(f"{path}: a text embedding_dim unlike hidden_dim is not supported.")

    def tower(encoder):
        return {
            "hidden_size": encoder.hidden_dim,
            "num_hidden_layers": encoder.num_layers,
            "num_attention_heads": encoder.num_heads,
            "intermediate_size": encoder.intermediate_dim,
            "layer_norm_eps": encoder.layer_norm_epsilon,
            "hidden_act": _ACTIVATIONS[encoder.intermediate_activation],
        }

    config = {
        "model_type": "siglip",
        "vision_config": {
            **tower(vision),
            "image_size": vision.image_shape[0],
            "patch_size": vision.patch_size,
        },
        "text_config": {
            **tower(text),
            "vocab_size": text.vocabulary_size,
            "max_position_embeddings": text.max_sequence_length,
            "projection_size": text.projection_dim or text.hidden_dim,
        },
    }
    tensors, v, t = {}, "vision_model", "text_model"
    found = _arrays(vision)
    kernel = found["embedding/patch_embedding/kernel"]
    tensors[f"{v}.embeddings.patch_embedding.weight"] = kernel.transpose(3, 2, 0, 1)
    tensors[f"{v}.embeddings.patch_embedding.bias"] = found["embedding/patch_embedding/bias"]
    tensors[f"{v}.embeddings.position_embedding.weight"] = found[
        "embedding/position_embedding/embeddings"
    ]
    _blocks(found, vision.num_layers, v, tensors)
    _norm(found, "post_layer_norm", f"{v}.post_layernorm", tensors)
    # The probe is an unnamed weight: Keras numbers it ("variable_1", ...).
    (probe,) = [k for k in found if re.fullmatch(r"head/variable(_\d+)?", k)]
    tensors[f"{v}.head.probe"] = found[probe]
    parts = {}
    for name in ("query", "key", "value"):
        _linear(found, f"head/attention/{name}", name, parts)
    tensors[f"{v}.head.attention.in_proj_weight"] = np.concatenate(
        [parts[f"{n}.weight"] for n in ("query", "key", "value")]
    )
    tensors[f"{v}.head.attention.in_proj_bias"] = np.concatenate(
        [parts[f"{n}.bias"] for n in ("query", "key", "value")]
    )
    _linear(found, "head/attention/attention_output", f"{v}.head.attention.out_proj", tensors)
    _norm(found, "head/layernorm", f"{v}.head.layernorm", tensors)
    _linear(found, "head/mlp/fc1", f"{v}.head.mlp.fc1", tensors)
    _linear(found, "head/mlp/fc2", f"{v}.head.mlp.fc2", tensors)

    found = _arrays(text)
    tensors[f"{t}.embeddings.token_embedding.weight"] = found[
        "embedding/token_embedding/embeddings"
    ]
    tensors[f"{t}.embeddings.position_embedding.weight"] = found[
        "embedding/position_embedding/embeddings"
    ]
    _blocks(found, text.num_layers, t, tensors)
    _norm(found, "post_layer_norm", f"{t}.final_layer_norm", tensors)
    _linear(found, "head", f"{t}.head", tensors)
    head = backbone.siglip_head
    tensors["logit_scale"] = ops.convert_to_numpy(head.logit_scale).reshape(1)
    tensors["logit_bias"] = ops.convert_to_numpy(head.logit_bias).reshape(1)
    return config, tensors, _mean_and_std(path)
