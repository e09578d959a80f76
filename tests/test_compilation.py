"""`jit_compile="auto"` picks XLA on TensorFlow where it is faster and
works, and the results do not change (keras_clip.models.compilation)."""

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers import tiny_batch

pytestmark = pytest.mark.xla  # the default as users get it (tests/conftest.py)


def _tiny(**kwargs):
    return keras_clip.CLIP.from_architecture("tiny-vit", **kwargs)


@pytest.mark.backend("tensorflow")
def test_tensorflow_default_is_xla_where_it_works():
    import tensorflow as tf

    assert _tiny().jit_compile is False  # never compiled: Keras' own default on a CPU
    model = _tiny()
    model.compile()
    assert model.jit_compile is True
    model.compile(jit_compile=False)  # the user's choice wins
    assert model.jit_compile is False
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        strategy_model = _tiny()
        strategy_model.compile()
    assert strategy_model.jit_compile is False
    # bf16 compute: oneDNN's kernels beat XLA:CPU's on a machine without GPU.
    bf16 = _tiny(dtype="mixed_bfloat16")
    bf16.compile()
    assert bf16.jit_compile is False


def _xla_flags_of_steps(monkeypatch, run):
    """The jit_compile of each step function (tf.function with
    reduce_retracing, as Keras' trainer builds them) while `run` runs."""
    import tensorflow as tf

    flags, real = [], tf.function

    def recording(*args, **kwargs):
        if kwargs.get("reduce_retracing"):
            flags.append(kwargs.get("jit_compile"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tf, "function", recording)
    run()
    monkeypatch.setattr(tf, "function", real)
    return flags


@pytest.mark.backend("tensorflow")
def test_tensorflow_predict_on_cpu_runs_the_graph_unless_xla_is_chosen(monkeypatch):
    batch = tiny_batch()
    model = _tiny()
    model.compile()
    fit_flags = _xla_flags_of_steps(monkeypatch, lambda: model.fit(batch, verbose=0))
    assert True in fit_flags  # the training step under XLA
    predict = lambda m: lambda: m.predict(batch, verbose=0)  # noqa: E731
    assert True not in _xla_flags_of_steps(monkeypatch, predict(model))
    assert True not in _xla_flags_of_steps(monkeypatch, predict(_tiny()))  # never compiled
    chosen = _tiny()
    chosen.compile(jit_compile=True)
    assert True in _xla_flags_of_steps(monkeypatch, predict(chosen))
    model.predict_jit_compile = True  # predict's own choice
    model.predict_function = None
    assert True in _xla_flags_of_steps(monkeypatch, predict(model))
    assert model.jit_compile is True  # training keeps its compiler


@pytest.mark.backend("jax", "torch")
def test_other_backends_keep_keras_default():
    model = _tiny()
    model.compile()
    assert model.jit_compile is (keras.backend.backend() == "jax")


@pytest.mark.backend("tensorflow")
def test_xla_default_trains_and_predicts_as_without():
    batch = tiny_batch()
    weights = _tiny().get_weights()
    results = []
    for jit_compile in ("auto", False):
        model = _tiny()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=jit_compile)
        history = model.fit(batch, batch_size=8, epochs=2, shuffle=False, verbose=0)
        embeddings = model.predict(batch, batch_size=8, verbose=0)
        results.append(
            (model.jit_compile, history.history["loss"], model.get_weights(), embeddings)
        )
    (xla, xla_loss, xla_weights, xla_out), (eager, loss, new_weights, out) = results
    assert xla and not eager
    np.testing.assert_allclose(xla_loss, loss, rtol=1e-5)
    for a, b in zip(xla_weights, new_weights):
        np.testing.assert_allclose(a, b, atol=2e-5)
    for key in out:
        np.testing.assert_allclose(xla_out[key], out[key], atol=2e-5)
    assert not np.allclose(weights[0], new_weights[0])  # it did train


def test_a_dtype_argument_reaches_every_layer(tmp_path):
    """dtype="mixed_bfloat16" computes the towers in bfloat16 too, not
    only the model's own layers (from_architecture and from_pretrained)."""
    built = _tiny(dtype="mixed_bfloat16")
    built.save_pretrained(str(tmp_path / "hf"))
    loaded = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"), dtype="mixed_bfloat16")
    for model in (built, loaded):
        layers = [layer for layer in model._flatten_layers() if layer is not model.objective]
        assert {layer.dtype_policy.name for layer in layers} == {"mixed_bfloat16"}
        assert model.objective.dtype_policy.name == "float32"  # losses in float32
        assert model.image_encoder.blocks[0].dtype_policy.compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # restored
    embeddings = loaded.predict(tiny_batch(), verbose=0)["image_embeddings"]
    assert embeddings.dtype == np.float32  # the model's outputs stay float32
