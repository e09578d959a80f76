"""open_clip's ConvNeXt CLIPs (timm `convnext_*` tower, open_clip's linear or
MLP head) load with open_clip's outputs on every backend, write back so
that open_clip reloads them bit for bit, and refuse what they cannot build
by name (keras_clip.models.timm_convnext, keras_clip.pretrained.open_clip_convnext)."""

import copy

import pytest

import keras_clip
from keras_clip.models import timm_convnext
from tests.helpers import import_open_clip
from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit
from tests.test_open_clip_eva import _assert_same_outputs
from tests.test_open_clip_eva import _batch
from tests.test_open_clip_eva import _open_clip_directory

TINY_TEXT = {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2}


def _config(head="linear", head_bias=False, image_size=64):
    """open_clip's convnext_tiny (timm's full-size tower) at 64 pixels, with
    a tiny text tower."""
    return {
        "embed_dim": 32,
        "vision_cfg": {
            "timm_model_name": "convnext_tiny",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": head,
            "timm_proj_bias": head_bias,
            "timm_drop": 0.0,
            "timm_drop_path": 0.1,
            "image_size": image_size,
        },
        "text_cfg": copy.deepcopy(TINY_TEXT),
    }


@pytest.mark.parametrize(
    "head, head_bias",
    [
        pytest.param("linear", False, marks=pytest.mark.backend("tensorflow", "jax", "torch")),
        # The head is backend-neutral keras.ops: not on JAX too (30 s of compiling).
        pytest.param("mlp", True, marks=pytest.mark.backend("tensorflow", "torch")),
    ],
)
def test_convnext_loads_with_open_clips_outputs_and_writes_back(head, head_bias, tmp_path):
    config = _config(head, head_bias)
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert model.image_encoder.dims == [96, 192, 384, 768]
    assert model.image_encoder.head == head
    _assert_same_outputs(model, reference, *_batch(image_size=64))
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")


@pytest.mark.backend("torch")
def test_every_timm_convnext_size_is_timms():
    """Each size's stages and LayerNorm epsilon, as timm builds them."""
    import_open_clip()
    import timm
    import torch

    for size, (depths, dims, epsilon) in timm_convnext.TIMM_CONVNEXT_SHAPES.items():
        with torch.device("meta"):
            tower = timm.create_model(f"convnext_{size}", num_classes=0)
        assert tuple(len(stage.blocks) for stage in tower.stages) == depths, size
        assert tuple(stage.blocks[0].mlp.fc2.out_features for stage in tower.stages) == dims
        assert tower.stem[1].eps == epsilon, size
        assert tower.stages[0].blocks[0].norm.eps == epsilon, size


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "key, value",
    [("timm_pool", "max"), ("timm_proj", "none"), ("image_size", 100), ("patch_dropout", 0.5)],
)
def test_convnext_options_it_cannot_build_are_refused_by_name(key, value):
    from keras_clip.pretrained.configs import is_supported_open_clip_config

    config = _config()
    config["vision_cfg"][key] = value
    with pytest.raises(ValueError, match=key):
        timm_convnext.from_open_clip_convnext_config(config)
    assert not is_supported_open_clip_config(config)


@pytest.mark.backend("torch")
def test_a_convnext_model_trains_and_round_trips_as_a_keras_file(tmp_path):
    import keras
    import numpy as np

    config = _config()
    _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    images, token_ids = _batch(image_size=64)
    data = {"images": np.tile(images, (2, 1, 1, 1)), "token_ids": np.tile(token_ids, (2, 1))}
    data["token_ids"][3:, 1] += 1  # six distinct captions
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    losses = model.fit(data, batch_size=6, epochs=3, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(str(tmp_path / "convnext.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "convnext.keras"))
    before, after = model.predict(data, verbose=0), reloaded.predict(data, verbose=0)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-6, rtol=0)
