"""open_clip's Swin CLIP (`swin_base_patch4_window7_224`: timm's Swin image
tower, open_clip's linear head, CLIP's text tower) loads with open_clip's
outputs on every backend, writes back so that open_clip reloads it bit for
bit, trains, and refuses what it cannot build by name
(keras_clip.encoders.SwinTransformer, keras_clip.models.timm_swin,
keras_clip.pretrained.open_clip_swin)."""

import json

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models import timm_swin
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model
from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit
from tests.test_open_clip_eva import _assert_same_outputs
from tests.test_open_clip_eva import _batch

# A shrunken Swin under a name of timm's pattern: 64-pixel images, 4-pixel
# patches, windows of 4: stages of sides 16, 8 and 4 (shifted windows in the
# first two, one unshifted window in the last).
TINY = "swin_tiny_patch4_window4_64"
TINY_SHAPE = dict(embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 4))


def _register_tiny_tower():
    import timm
    from timm.models import swin_transformer

    if timm.models.is_model(TINY):
        return

    def create(pretrained=False, **kwargs):
        shape = dict(TINY_SHAPE, img_size=64, patch_size=4, window_size=4)
        return swin_transformer._create_swin_transformer(TINY, pretrained, **shape, **kwargs)

    create.__name__ = TINY
    timm.models.register_model(create)


def _config():
    text = {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2}
    vision = {"image_size": 64, "timm_model_name": TINY, "timm_model_pretrained": False}
    vision.update(timm_pool="", timm_proj="linear")
    return {"embed_dim": 24, "vision_cfg": vision, "text_cfg": text}


def _open_clip_directory(config, directory):
    import_open_clip()
    _register_tiny_tower()
    directory.mkdir()
    reference = random_open_clip_model(config, directory / "open_clip_model.safetensors")
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    return reference


@pytest.mark.backend("tensorflow", "jax", "torch")
def test_swin_loads_with_open_clips_outputs_and_writes_back(tmp_path):
    reference = _open_clip_directory(_config(), tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    vision = model.image_encoder
    assert (vision.width, vision.depths, vision.num_heads) == (16, (2, 2, 2), (2, 4, 4))
    shifts = [[getattr(layer, "shift", None) for layer in stage] for stage in vision.stages]
    assert shifts == [[0, 2], [None, 0, 2], [None, 0, 0]]  # None: the patch merging
    _assert_same_outputs(model, reference, *_batch(image_size=64))
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")


@pytest.mark.backend("torch")
def test_a_swin_model_trains_round_trips_and_reloads(tmp_path):
    _open_clip_directory(_config(), tmp_path / "swin")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "swin"))
    images, token_ids = _batch(image_size=64)
    data = {"images": np.tile(images, (4, 1, 1, 1)), "token_ids": np.tile(token_ids, (4, 1))}
    data["token_ids"][3:6, 1] += 1
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    losses = model.fit(data, batch_size=12, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(str(tmp_path / "swin.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "swin.keras"))
    before, after = model.predict(data, verbose=0), reloaded.predict(data, verbose=0)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-6, rtol=0)


@pytest.mark.backend("torch")
def test_the_swin_sizes_are_timms_and_other_options_are_refused():
    """Each size of `TIMM_SWIN_SHAPES` built by timm on the meta device; the
    built-in name's shape; options it cannot build, refused by name."""
    import_open_clip()
    import timm
    import torch

    for size, (width, depths, heads) in timm_swin.TIMM_SWIN_SHAPES.items():
        with torch.device("meta"):
            tower = timm.create_model(f"swin_{size}_patch4_window7_224", num_classes=0)
        found = tuple(len(stage.blocks) for stage in tower.layers)
        found_heads = tuple(stage.blocks[0].attn.num_heads for stage in tower.layers)
        assert (tower.embed_dim, found, found_heads) == (width, depths, heads), size
    shape = keras_clip.models.architecture_config("swin_base_patch4_window7_224")
    assert shape["swin"]["window"] == 7 and shape["embed_dim"] == 640
    for section, key, value in [
        ("vision_cfg", "timm_pool", "avg"),
        ("vision_cfg", "image_size", 256),
        ("vision_cfg", "timm_proj_bias", True),
        (None, "custom_text", True),
    ]:
        config = _config()
        (config[section] if section else config)[key] = value
        with pytest.raises(ValueError, match=key):
            timm_swin.from_open_clip_swin_config(config)
