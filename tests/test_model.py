"""CLIP and CLIP-Lite: training, inference, saving, errors."""

import math

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers import tiny_batch
from tests.helpers import to_numpy

BATCH = tiny_batch()


def tiny(objective="infonce", model_class=keras_clip.CLIP, **kwargs):
    if model_class is keras_clip.CLIPLite:
        return model_class.from_architecture("tiny-vit", **kwargs)
    return model_class.from_architecture("tiny-vit", objective=objective, **kwargs)


def assert_unit_norm(x):
    np.testing.assert_allclose(np.linalg.norm(to_numpy(x), axis=-1), 1.0, rtol=1e-5)


def test_call_and_encoders_agree():
    model = tiny()
    outputs = model(BATCH)
    assert tuple(outputs["image_embeddings"].shape) == (8, 16)
    assert_unit_norm(outputs["image_embeddings"])
    assert_unit_norm(outputs["text_embeddings"])
    np.testing.assert_allclose(
        to_numpy(model.encode_image(BATCH["images"])),
        to_numpy(outputs["image_embeddings"]),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        to_numpy(model.encode_text(BATCH["token_ids"])),
        to_numpy(outputs["text_embeddings"]),
        rtol=1e-5,
        atol=1e-6,
    )
    assert set(model({"images": BATCH["images"]})) == {"image_embeddings"}


# Both model classes train and round-trip on every backend; the other
# objectives (backend-neutral keras.ops) on the one that runs them fastest
# (PyTorch: a second or two; a JAX compile here costs ~15-30 s).
_TORCH = pytest.mark.backend("torch")


@pytest.mark.parametrize(
    "objective, model_class",
    [
        ("infonce", keras_clip.CLIP),
        pytest.param("jsd", keras_clip.CLIP, marks=_TORCH),
        pytest.param("siglip", keras_clip.CLIP, marks=_TORCH),
        (None, keras_clip.CLIPLite),
    ],
)
def test_fit_lowers_the_loss_on_a_fixed_batch(objective, model_class):
    model = tiny(objective, model_class)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = model.evaluate(BATCH, batch_size=8, verbose=0, return_dict=True)
    # A fixed order: with one rolled negative per positive (JSD), shuffling
    # would score pairs at evaluation that training never contrasted.
    history = model.fit(BATCH, batch_size=8, epochs=12, verbose=0, shuffle=False)
    after = model.evaluate(BATCH, batch_size=8, verbose=0, return_dict=True)
    assert after["loss"] < 0.8 * before["loss"], (before, after)
    logged = {"loss", "i2t_recall@1", "t2i_recall@1"}
    if objective == "siglip":  # SigLIP bounds no mutual information: no "mi"
        assert set(history.history) == logged
    else:
        assert set(history.history) == logged | {"mi"}
        assert after["mi"] > before["mi"]
    predictions = model.predict(BATCH, batch_size=4, verbose=0)
    assert_unit_norm(predictions["image_embeddings"])
    assert predictions["text_embeddings"].shape == (8, 16)


def test_compute_loss_equals_the_objective_on_the_embeddings():
    model = tiny()
    outputs = model(BATCH)
    expected = keras_clip.objectives.functional.clip_loss(
        outputs["image_embeddings"], outputs["text_embeddings"], 1 / 0.07
    )
    loss = model.compute_loss(BATCH, y_pred=outputs, training=False)
    np.testing.assert_allclose(to_numpy(loss), to_numpy(expected), rtol=1e-5)


def test_logit_scale_clamp_holds_after_huge_learning_rate():
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e4))
    model.fit(BATCH, batch_size=8, epochs=3, verbose=0)
    log_scale = float(to_numpy(model.objective.log_logit_scale))
    assert log_scale <= math.log(100.0) + 1e-6
    assert float(to_numpy(model.logit_scale)) <= 100.0 + 1e-4


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains(policy):
    if policy == "mixed_float16" and keras.backend.backend() in ("jax", "torch"):
        pytest.skip("JAX's and PyTorch's CPU backends have no float16 matmul")
    keras.config.set_dtype_policy(policy)
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(BATCH, batch_size=8, epochs=8, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert model.objective.log_logit_scale.dtype == "float32"
    assert keras.backend.standardize_dtype(model(BATCH)["image_embeddings"].dtype) == "float32"


@pytest.mark.parametrize(
    "make",
    [
        lambda: tiny(),
        lambda: tiny(model_class=keras_clip.CLIPLite),
        pytest.param(
            lambda: keras_clip.CLIP.from_architecture(
                "tiny-vit",
                objective=keras_clip.objectives.JSDLoss(
                    critic="projection", projection_dim=8, prior_weight=0.1
                ),
            ),
            marks=_TORCH,
        ),
    ],
)
def test_keras_file_round_trip_gives_identical_embeddings(make, tmp_path):
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(BATCH, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    for key, value in model.predict(BATCH, verbose=0).items():
        np.testing.assert_array_equal(loaded.predict(BATCH, verbose=0)[key], value)
    np.testing.assert_array_equal(to_numpy(loaded.logit_scale), to_numpy(model.logit_scale))
    # The optimizer comes back with its state, so training resumes exactly.
    assert int(to_numpy(loaded.optimizer.iterations)) == 1
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_from_pretrained_keras_file_with_model_arguments(tmp_path):
    model = tiny()
    model.objective.log_logit_scale.assign(2.5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    expected = model.predict(BATCH, verbose=0)
    same_objective = keras_clip.CLIP.from_pretrained(path, micro_batches=2)
    other_objective = keras_clip.CLIP.from_pretrained(path, objective="siglip")
    assert same_objective.micro_batches == 2
    assert float(to_numpy(same_objective.objective.log_logit_scale)) == 2.5
    assert isinstance(other_objective.objective, keras_clip.objectives.SigLIPLoss)
    assert float(to_numpy(other_objective.logit_scale)) == pytest.approx(10.0)  # its own init
    for rebuilt in (same_objective, other_objective):
        for key, value in rebuilt.predict(BATCH, verbose=0).items():
            np.testing.assert_array_equal(value, expected[key])
    with pytest.raises(ValueError, match=r"Unknown model arguments \['temperature'\]"):
        keras_clip.CLIP.from_pretrained(path, temperature=0.1)


def test_resnet_keras_file_round_trip(tmp_path):
    model = keras_clip.CLIP.from_architecture("tiny-rn")
    batch = tiny_batch(image_size=64)
    path = str(tmp_path / "rn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(batch, verbose=0)["image_embeddings"],
        model.predict(batch, verbose=0)["image_embeddings"],
    )


def test_model_config_round_trip():
    model = tiny("siglip", image_pooling="mean", text_pooling="end_token")
    clone = keras_clip.CLIP.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert clone.get_config() == model.get_config()
    np.testing.assert_array_equal(
        to_numpy(clone(BATCH)["text_embeddings"]), to_numpy(model(BATCH)["text_embeddings"])
    )


def test_bad_inputs_raise_clear_errors():
    model = tiny()
    mismatched = {"images": BATCH["images"], "token_ids": BATCH["token_ids"][:4]}
    with pytest.raises(ValueError, match="different batch sizes: 8 images and 4 captions"):
        model(mismatched)
    # Before Keras' data adapter, whose own message crashes on a dict.
    model.compile()
    for method in (model.fit, model.evaluate, model.predict):
        with pytest.raises(ValueError, match="different batch sizes: 8 images and 4 captions"):
            method(mismatched, verbose=0)
    with pytest.raises(ValueError, match="rank 4"):
        model({"images": BATCH["images"][0]})
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        model({"images": np.zeros((2, 32, 32, 1), "float32")})
    with pytest.raises(ValueError, match="context_length=16"):
        model({"token_ids": np.ones((2, 17), "int32")})
    with pytest.raises(ValueError, match="Unknown input keys \\['image'\\]"):
        model({"image": BATCH["images"], "token_ids": BATCH["token_ids"]})
    with pytest.raises(ValueError, match="takes a dict"):
        model(BATCH["images"])
    with pytest.raises(ValueError, match="Unknown objective 'hinge'"):
        tiny("hinge")
    with pytest.raises(ValueError, match="Unknown architecture 'ViT-Z-99'"):
        keras_clip.CLIP.from_architecture("ViT-Z-99")
    with pytest.raises(ValueError, match="embed_dim must be a positive integer"):
        tiny(embed_dim=0)
    with pytest.raises(ValueError, match="Unknown projection"):
        tiny(projection="cubic")
    model.compile()
    with pytest.raises(ValueError, match="do not pass `loss`"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="at least 2 examples"):
        model.fit({k: v[:1] for k, v in BATCH.items()}, batch_size=1, verbose=0)


@pytest.mark.parametrize(
    "extra, given",
    [
        ({"y": np.zeros(8)}, "targets"),
        ({"sample_weight": np.ones(8)}, "sample_weight"),
        ({"class_weight": {0: 1.0}}, "class_weight"),
    ],
)
def test_targets_and_weights_are_refused_not_ignored(extra, given):
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=f"fit takes no {given}"):
        model.fit(BATCH, batch_size=8, epochs=1, verbose=0, **extra)
    if "class_weight" not in extra:
        with pytest.raises(ValueError, match=f"evaluate takes no {given}"):
            model.evaluate(BATCH, batch_size=8, verbose=0, **extra)


def test_targets_inside_a_dataset_are_refused():
    import tensorflow as tf

    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    pairs = tf.data.Dataset.from_tensor_slices((BATCH, np.zeros(8))).batch(8)
    with pytest.raises(ValueError, match="compute_loss takes no targets"):
        model.fit(pairs, epochs=1, verbose=0)
