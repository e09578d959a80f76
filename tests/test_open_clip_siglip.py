"""open_clip's own SigLIP models (timm image tower, CustomTextCLIP text
tower) load with open_clip's outputs; options they cannot build are refused
by name (keras_clip.pretrained.open_clip_siglip)."""

import copy
import json

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model

TIMM_NAME = "vit_base_patch8_siglip_32"  # registered below: "base" heads (12), tiny width
CONFIG = {
    "embed_dim": 48,
    "custom_text": True,
    "init_logit_bias": -10,
    "vision_cfg": {
        "image_size": 32,
        "timm_model_name": TIMM_NAME,
        "timm_model_pretrained": False,
        "timm_pool": "map",
        "timm_proj": "none",
    },
    "text_cfg": {
        "context_length": 12,
        "vocab_size": 100,
        "width": 32,
        "heads": 4,
        "layers": 2,
        "no_causal_mask": True,
        "proj_bias": True,
        "pool_type": "last",
        "norm_kwargs": {"eps": 1e-6},
        "tokenizer_kwargs": {"clean": "canonicalize"},
    },
}


def _register_tiny_timm_siglip():
    """A timm SigLIP ViT of base's head count (12) at width 48, depth 2."""
    import timm
    from timm.models import vision_transformer

    if timm.models.is_model(TIMM_NAME):
        return

    @timm.models.register_model
    def vit_base_patch8_siglip_32(pretrained=False, **kwargs):
        shape = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=12, mlp_ratio=2.5)
        kwargs.update(class_token=False, global_pool="map")  # open_clip passes "map"
        return vision_transformer._create_vision_transformer(
            TIMM_NAME, pretrained=pretrained, **shape, **kwargs
        )


def _open_clip_siglip(config, directory, seed=0):
    """A random open_clip CustomTextCLIP, every tensor perturbed, saved as
    an open_clip directory (open_clip_config.json + safetensors)."""
    import_open_clip()
    _register_tiny_timm_siglip()
    directory.mkdir()
    model = random_open_clip_model(config, directory / "open_clip_model.safetensors", seed)
    preprocess = {"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"}
    (directory / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": config, "preprocess_cfg": {**preprocess, "resize_mode": "squash"}})
    )
    return model


def _compare(config, tmp_path):
    import torch

    reference = _open_clip_siglip(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, 32, 32, 3)).astype("float32")
    token_ids = rng.integers(1, 100, size=(3, 12)).astype("int32")
    token_ids[0, 5:] = 0  # SigLIP pads to the context and pools the last position
    with torch.no_grad():
        image, text, scale, bias = reference(
            torch.from_numpy(images.transpose(0, 3, 1, 2)),
            torch.from_numpy(token_ids.astype("int64")),
        )
        expected_logits = (scale * image @ text.T + bias).numpy()
    found = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    np.testing.assert_allclose(found["image_embeddings"], image.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(found["text_embeddings"], text.numpy(), atol=1e-4, rtol=0)
    scale, bias = (
        float(keras.ops.convert_to_numpy(v)) for v in (model.logit_scale, model.logit_bias)
    )
    logits = scale * found["image_embeddings"] @ found["text_embeddings"].T + bias
    np.testing.assert_allclose(logits, expected_logits, atol=1e-4, rtol=0)
    return model


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize("version", ["siglip", "siglip2"])
def test_open_clip_siglip_loads_with_open_clips_outputs(version, tmp_path):
    config = copy.deepcopy(CONFIG)
    if version == "siglip2":  # the text tower's GELU is the tanh approximation
        config["text_cfg"]["act_kwargs"] = {"approximate": "tanh"}
        config["text_cfg"]["vocab_size"] = 100
    model = _compare(config, tmp_path)
    assert model.text_encoder.activation == ("gelu_tanh" if version == "siglip2" else "gelu")
    assert model.image_encoder.activation == "gelu"  # timm's exact GELU
    assert model.image_preprocessing.fitting == {
        "resize_mode": "squash",
        "interpolation": "bicubic",
    }
    assert type(model.objective).__name__ == "SigLIPLoss"
    state_dict = str(tmp_path / "open_clip" / "open_clip_model.safetensors")
    again = keras_clip.CLIP.from_pretrained(state_dict, architecture=config)
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.backend("tensorflow", "torch")
def test_a_text_tower_without_projection_loads_and_writes_back(tmp_path):
    """open_clip's proj_type="none" (ViT-SO400M-16-SigLIP-i18n-256): no text
    head, the pooled features are the embedding; transformers' SiglipModel
    always has a head, so the write-back's is the identity (same outputs)."""
    import torch
    import transformers

    config = copy.deepcopy(CONFIG)
    config["text_cfg"].update(width=48, heads=4, proj_type="none")
    del config["text_cfg"]["proj_bias"]  # as open_clip's i18n config: unused without projection
    model = _compare(config, tmp_path)
    assert model.text_encoder.head is None and not model.text_encoder.projection
    path = str(tmp_path / "model.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert again.text_encoder.head is None
    model.save_pretrained(str(tmp_path / "hf"))
    reloaded = transformers.SiglipModel.from_pretrained(str(tmp_path / "hf")).eval()
    head = reloaded.text_model.head
    np.testing.assert_array_equal(head.weight.detach().numpy(), np.eye(48, dtype="float32"))
    token_ids = np.random.default_rng(2).integers(1, 100, size=(2, 12))
    with torch.no_grad():
        expected = reloaded.get_text_features(input_ids=torch.from_numpy(token_ids))
    expected = getattr(expected, "pooler_output", expected).numpy()
    found = keras.ops.convert_to_numpy(model.text_encoder(token_ids.astype("int32")))
    np.testing.assert_allclose(found, expected, atol=1e-5, rtol=0)


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "section, key, value",
    [
        ("vision_cfg", "timm_pool", "avg"),
        ("vision_cfg", "timm_proj", "linear"),
        ("vision_cfg", "timm_model_name", "vit_base_patch16_siglip_gap_224"),
        ("text_cfg", "proj_type", "mlp"),
        ("text_cfg", "pool_type", "argmax"),
        ("text_cfg", "no_causal_mask", False),
        ("text_cfg", "act_kwargs", {"approximate": "none", "inplace": True}),
        (None, "quick_gelu", True),
    ],
)
def test_open_clip_siglip_options_it_cannot_build_are_refused_by_name(section, key, value):
    from keras_clip.pretrained.configs import is_supported_open_clip_config
    from keras_clip.pretrained.open_clip_siglip import check_open_clip_siglip_options

    config = copy.deepcopy(CONFIG)
    (config[section] if section else config)[key] = value
    with pytest.raises(ValueError, match=key):
        check_open_clip_siglip_options(config)
    assert not is_supported_open_clip_config(config)


@pytest.mark.backend("torch")
def test_built_in_siglip_names_resolve_and_point_to_a_checkpoint():
    from keras_clip.models.architectures import architecture_config
    from keras_clip.models.architectures import open_clip_architectures

    table = open_clip_architectures()
    siglip_names = [name for name in table if "SigLIP" in name]
    assert len(siglip_names) == 26 and "ViT-SO400M-14-SigLIP" in siglip_names
    assert "ViT-SO400M-16-SigLIP-i18n-256" in siglip_names  # text proj_type "none"
    with pytest.raises(ValueError, match="from_pretrained"):
        architecture_config("ViT-B-16-SigLIP2")
