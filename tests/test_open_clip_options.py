"""Each open_clip model option either loads exactly (outputs of a random
open_clip model within 1e-4) or is refused with an error naming it."""

import copy

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models.open_clip_options import from_open_clip_config
from tests.helpers import random_open_clip_model

BASE = {
    "embed_dim": 24,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 8, "patch_size": 8},
    "text_cfg": {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2},
}


def _with(**changes):
    """BASE with "vision_cfg.key" / "text_cfg.key" / top-level keys changed."""
    config = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition("__")
        (config[section] if section else config)[key] = value
    return config


def _compare(config, tmp_path, token_ids=None):
    import torch

    reference = random_open_clip_model(config, tmp_path / "model.safetensors")
    model = keras_clip.CLIP.from_pretrained(
        str(tmp_path / "model.safetensors"), architecture=config
    )
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    if token_ids is None:
        token_ids = rng.integers(1, 90, size=(3, 12)).astype("int32")
        token_ids[:, 7] = 99  # the end token, the largest id
        token_ids[:, 8:] = 0
    with torch.no_grad():
        expected_image = reference.encode_image(
            torch.from_numpy(images.transpose(0, 3, 1, 2)), normalize=True
        ).numpy()
        expected_text = reference.encode_text(
            torch.from_numpy(token_ids.astype("int64")), normalize=True
        ).numpy()
    found_image = keras.ops.convert_to_numpy(model.encode_image(images))
    found_text = keras.ops.convert_to_numpy(model.encode_text(token_ids))
    np.testing.assert_allclose(found_image, expected_image, atol=1e-4, rtol=0)
    np.testing.assert_allclose(found_text, expected_text, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(model.logit_scale)),
        float(reference.logit_scale.exp()),
        rtol=1e-6,
    )
    return model, reference


@pytest.mark.backend("jax")
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"text_cfg__pool_type": "argmax"},
        {"vision_cfg__pool_type": "tok", "vision_cfg__final_ln_after_pool": True},
        {"text_cfg__final_ln_after_pool": True},
        {"vision_cfg__norm_kwargs": {"eps": 1e-6}, "text_cfg__norm_kwargs": {"eps": 1e-6}},
        {"quick_gelu": True, "vision_cfg__mlp_ratio": 2.5},
        {"text_cfg__no_causal_mask": True},
        {  # CLIPA's towers
            "vision_cfg__no_ln_pre": True,
            "vision_cfg__pool_type": "avg",
            "vision_cfg__final_ln_after_pool": True,
            "text_cfg__pool_type": "last",
            "text_cfg__no_causal_mask": True,
        },
        {"vision_cfg__pool_type": "avg"},
        {"vision_cfg__ls_init_value": 1e-4, "text_cfg__ls_init_value": 1e-4},
    ],
    ids=[
        "defaults",
        "argmax",
        "tok-ln-after",
        "text-ln-after",
        "eps",
        "quickgelu-mlp",
        "bidirectional",
        "clipa",
        "avg-ln-before",
        "layer-scale",
    ],  # fmt: skip
)
def test_supported_options_load_exactly(changes, tmp_path):
    _compare(_with(**changes), tmp_path)


@pytest.mark.backend("jax")
def test_eos_pooling_pools_at_the_eos_id(tmp_path):
    config = _with(text_cfg__pool_type="eos", text_cfg__eos_id=50)
    token_ids = np.random.default_rng(2).integers(1, 90, size=(3, 12)).astype("int32")
    token_ids[token_ids == 50] = 51
    token_ids[:, 6] = 50  # not the largest id: argmax pooling would go elsewhere
    token_ids[:, 9] = 99
    token_ids[2, 6] = 51  # no eos at all: open_clip pools position 0
    model, _ = _compare(config, tmp_path, token_ids)
    assert model.text_encoder.end_token_id == 50


@pytest.mark.backend("jax")
def test_init_logit_bias_loads_the_bias_and_writes_it_back(tmp_path):
    config = _with(init_logit_bias=-5.0)
    model, reference = _compare(config, tmp_path)
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(model.logit_bias)), float(reference.logit_bias), 1e-6
    )
    model.save_pretrained(str(tmp_path / "back"), format="open_clip")
    again = keras_clip.CLIP.from_pretrained(str(tmp_path / "back"))
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(again.logit_bias)), float(reference.logit_bias), 1e-6
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"text_cfg__pool_type": "first"}, "text_cfg.pool_type='first'"),
        ({"vision_cfg__pool_type": "none"}, "vision_cfg.pool_type='none'"),
        ({"vision_cfg__attentional_pool": True}, "vision_cfg.attentional_pool=True"),
        ({"vision_cfg__qk_norm": True}, "vision_cfg.qk_norm=True"),
        ({"text_cfg__proj_bias": True}, "text_cfg.proj_bias=True"),
        ({"text_cfg__proj_type": "mlp"}, "text_cfg.proj_type='mlp'"),
        ({"text_cfg__embed_cls": True}, "text_cfg.embed_cls=True"),
        ({"vision_cfg__timm_model_name": "vit_base_patch16_224"}, "timm image tower"),
        ({"text_cfg__hf_model_name": "bert-base"}, "Hugging Face text tower"),
        ({"vision_cfg__norm_kwargs": {"eps": 1e-6, "elementwise_affine": False}}, "norm_kwargs"),
        ({"vision_cfg__act_kwargs": {"approximate": "tanh"}}, "act_kwargs"),
        ({"custom_text": True}, "custom_text=True"),
        ({"vision_cfg__made_up": 1}, "Unknown open_clip option vision_cfg.made_up"),
    ],
)
@pytest.mark.backend("torch")
def test_unsupported_options_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        from_open_clip_config(_with(**changes))


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "changes",
    [
        {
            "vision_cfg__no_ln_pre": True,
            "vision_cfg__pool_type": "avg",
            "vision_cfg__final_ln_after_pool": True,
            "text_cfg__pool_type": "last",
            "text_cfg__no_causal_mask": True,
        },
        {"vision_cfg__ls_init_value": 1e-4, "text_cfg__ls_init_value": 1e-4},
    ],
    ids=["clipa", "layer-scale"],
)
def test_clipa_and_layer_scale_write_back_for_open_clip_bit_for_bit(changes, tmp_path):
    from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit

    model, reference = _compare(_with(**changes), tmp_path)
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")
    with pytest.raises(ValueError, match="format='open_clip'"):
        model.save_pretrained(str(tmp_path / "hf"), format="huggingface")
    assert not (tmp_path / "hf").exists()  # a refusal writes nothing
