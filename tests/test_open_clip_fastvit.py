"""open_clip's MobileCLIP and MobileCLIP 2 FastViT models (timm `fastvit_mci*`
towers in their multi-branch training form, bidirectional text towers) load
with open_clip's outputs on every backend, write back so that open_clip
reloads them bit for bit, and fold for serving into single convolutions that
compute the same embeddings (keras_clip.encoders.FastViT)."""

import functools

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models import timm_fastvit
from tests.helpers import import_open_clip
from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit
from tests.test_open_clip_eva import _assert_same_outputs
from tests.test_open_clip_eva import _batch
from tests.test_open_clip_eva import _open_clip_directory

# Shrunken MCi layouts, registered under "fastvit_<variant>_tiny": MCi0's
# four stages (BatchNorm attention, squeeze-excite downsampling) and MCi3's
# five (LayerNorm attention, no 1 x 1 stem branches).
TINY_TOWERS = {
    "fastvit_mci0_tiny": dict(
        layers=(1, 2, 1, 1),
        embed_dims=(16, 32, 64, 128),
        mlp_ratios=(3, 3, 3, 3),
        se_downsamples=(False, False, True, True),
        pos_embs=(None, None, None, "cpe"),
        token_mixers=("repmixer", "repmixer", "repmixer", "attention"),
        lkc_use_act=True,
    ),
    "fastvit_mci3_tiny": dict(
        layers=(1, 1, 1, 1, 1),
        embed_dims=(8, 16, 32, 64, 128),
        mlp_ratios=(4, 4, 4, 4, 4),
        se_downsamples=(False,) * 5,
        downsamples=(False, True, True, True, True),
        pos_embs=(None, None, None, "cpe", "cpe"),
        token_mixers=("repmixer", "repmixer", "repmixer", "attention", "attention"),
        lkc_use_act=True,
        layer_norm=True,
        stem_use_scale_branch=False,
    ),
}


def _register_tiny_towers():
    import timm
    from timm.layers import LayerNorm2d
    from timm.models import fastvit

    for name, arguments in TINY_TOWERS.items():
        if timm.models.is_model(name):
            continue
        arguments = dict(arguments)
        cpe = functools.partial(fastvit.RepConditionalPosEnc, spatial_shape=(7, 7))
        arguments["pos_embs"] = tuple(cpe if p else None for p in arguments["pos_embs"])
        if arguments.pop("layer_norm", False):
            arguments["norm_layer"] = functools.partial(LayerNorm2d, eps=1e-5)

        def create(pretrained=False, _name=name, _arguments=arguments, **kwargs):
            return fastvit._create_fastvit(
                _name, pretrained=pretrained, **dict(_arguments, **kwargs)
            )

        create.__name__ = name
        timm.models.register_model(create)


def _config(timm_name):
    return {
        "embed_dim": 32,
        "custom_text": True,
        "vision_cfg": {
            "timm_model_name": timm_name,
            "timm_model_pretrained": False,
            "timm_pool": "avg",
            "timm_proj": None,
            "timm_drop": 0.0,
            "timm_drop_path": 0.0,
            "image_size": 64,
        },
        "text_cfg": {
            "context_length": 12,
            "vocab_size": 100,
            "width": 32,
            "heads": 4,
            "layers": 2,
            "no_causal_mask": True,
        },
    }


def _directory(timm_name, directory):
    import_open_clip()
    _register_tiny_towers()
    return _open_clip_directory(_config(timm_name), directory)


@pytest.mark.parametrize(
    "timm_name",
    [
        pytest.param("fastvit_mci0_tiny", marks=pytest.mark.backend("tensorflow", "jax", "torch")),
        # MCi3's layout on JAX too would add 25 s of compiling to the longest lane.
        pytest.param("fastvit_mci3_tiny", marks=pytest.mark.backend("tensorflow", "torch")),
    ],
)
def test_fastvit_loads_with_open_clips_outputs_writes_back_and_folds(timm_name, tmp_path):
    reference = _directory(timm_name, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    images, token_ids = _batch(image_size=64)
    _assert_same_outputs(model, reference, images, token_ids)
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")
    folded = model.image_encoder.reparameterized()
    assert folded.folded and folded.count_params() < model.image_encoder.count_params()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(folded(images)),
        keras.ops.convert_to_numpy(model.image_encoder(images)),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.backend("torch")
def test_the_mci_variants_are_timms():
    """Each MCi variant built by timm on the meta device: its stages and
    options are the ones keras-clip builds, squeeze-excite widths included."""
    import_open_clip()
    import timm
    import torch
    from timm.layers import LayerNorm2d

    from keras_clip.encoders.fastvit import FastViT

    for variant, shape in timm_fastvit.TIMM_FASTVIT_SHAPES.items():
        with torch.device("meta"):
            tower = timm.create_model(f"fastvit_{variant}", num_classes=8)
        stages = tower.stages
        assert [len(stage.blocks) for stage in stages] == shape["depths"], variant
        assert [stage.blocks[0].mlp.fc2.out_channels for stage in stages] == shape["dims"]
        ratios = [
            s.blocks[0].mlp.fc1.out_channels / s.blocks[0].mlp.fc1.in_channels for s in stages
        ]
        assert ratios == shape["mlp_ratios"], variant
        mixers = ["attention" if hasattr(s.blocks[0], "norm") else "repmixer" for s in stages]
        assert mixers == shape["token_mixers"], variant
        downsampled = [not isinstance(s.downsample, torch.nn.Identity) for s in stages]
        keras_tower = FastViT(256, output_dim=8, **shape)
        assert downsampled == [str(i) in keras_tower.downsample_layers for i in range(len(stages))]
        se = [not isinstance(s.downsample, torch.nn.Identity) and not isinstance(
            s.downsample.proj[0].se, torch.nn.Identity) for s in stages]  # fmt: skip
        assert se == [a and b for a, b in zip(downsampled, shape["se_downsamples"])], variant
        for i, stage in enumerate(stages):
            if se[i]:
                width = stage.downsample.proj[0].se.fc1.out_channels
                assert keras_tower.downsample_layers[str(i)][0].se_channels == width, variant
        assert keras_tower.final_conv.se_channels == tower.final_conv.se.fc1.out_channels
        cpe = [not isinstance(s.pos_emb, torch.nn.Identity) for s in stages]
        assert cpe == shape["position_encodings"], variant
        attention = stages[-1].blocks[0].norm
        assert isinstance(attention, LayerNorm2d) == (shape["attention_norm"] == "layer"), variant
        scale = tower.stem[0].conv_scale is not None
        assert scale == shape["stem_scale_branch"], variant


@pytest.mark.backend("torch")
def test_the_smallest_real_mobileclip2_loads_at_full_size_and_serves_folded(tmp_path):
    """open_clip's own MobileCLIP2-S0 (timm's full-size fastvit_mci0, 256
    pixels), random and perturbed: open_clip's outputs, written back bit for
    bit, and the folded serving form's embeddings within 1e-5."""
    open_clip = import_open_clip()
    config = open_clip.get_model_config("MobileCLIP2-S0")
    reference = _open_clip_directory(config, tmp_path / "open_clip", seed=3)
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert model.image_encoder.dims == [64, 128, 256, 512]
    images, token_ids = _batch(256, 77, 49408)
    _assert_same_outputs(model, reference, images[:2], token_ids[:2])
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")
    served = keras_clip.models.reparameterized(model)
    assert served.image_encoder.folded
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(served.encode_image(images[:2])),
        keras.ops.convert_to_numpy(model.encode_image(images[:2])),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.backend("tensorflow", "torch")
def test_a_fastvit_model_trains_round_trips_and_exports_folded(tmp_path):
    """fit updates the BatchNorm statistics and lowers the loss; the .keras
    file gives the same embeddings; the SavedModel serves the folded tower
    with the trained model's embeddings (TensorFlow lane)."""
    _directory("fastvit_mci0_tiny", tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    images, token_ids = _batch(image_size=64)
    data = {"images": np.tile(images, (4, 1, 1, 1)), "token_ids": np.tile(token_ids, (4, 1))}
    data["token_ids"][3:6, 1] += 1
    data["token_ids"][6:9, 2] += 1
    moving = model.image_encoder.stem[0].norms[0].moving_mean
    before = keras.ops.convert_to_numpy(moving).copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)  # XLA: 30 s more
    losses = model.fit(data, batch_size=12, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert not np.allclose(keras.ops.convert_to_numpy(moving), before)
    path = str(tmp_path / "fastvit.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    expected = model.predict(data, verbose=0)
    for key, value in reloaded.predict(data, verbose=0).items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6, rtol=0)
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    from keras_clip.export import export_saved_model

    tokenizer = keras_clip.Tokenizer.from_corpus(["a b c d e f"], 100, 12)
    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    found = served.signatures["encode_normalized_images"](images=tf.constant(data["images"]))
    np.testing.assert_allclose(
        next(iter(found.values())).numpy(), expected["image_embeddings"], atol=1e-5, rtol=0
    )
    names = [v.name for v in served.variables]
    assert not any("moving_mean" in name for name in names)  # no BatchNorm left
