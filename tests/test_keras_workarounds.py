"""The Keras 3.15 bugs that `keras_clip.keras_workarounds` works around are
still there (each test fails once Keras fixes its bug: then drop the
workaround), and the workarounds give the right answer. The other two
multi-worker bugs are checked inside the two-process test in
test_distributed.py."""

import numpy as np
import pytest

pytestmark = pytest.mark.backend("tensorflow")  # the bug is in the TF trainer


def _batches(drop_remainder):
    import tensorflow as tf

    pairs = (np.zeros((20, 2), "float32"), np.ones((20, 1), "float32"))
    dataset = tf.data.Dataset.from_tensor_slices(pairs).filter(lambda x, y: True)
    return dataset.batch(8, drop_remainder=drop_remainder)  # 2 full batches of 8


def _constant_loss_model():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # loss 1 always
    return model


def test_keras_reports_a_phantom_batch_with_unknown_cardinality():
    model = _constant_loss_model()
    # Two batches of loss 1.0, reported as (1 + 1 + 0) / 3.
    assert model.evaluate(_batches(drop_remainder=True), verbose=0) == pytest.approx(2 / 3)


def test_full_batches_only_reports_the_true_loss():
    import tensorflow as tf

    from keras_clip.keras_workarounds import full_batches_only

    pairs = {"x": np.zeros((20, 2), "float32"), "y": np.ones((20, 1), "float32")}
    dataset = tf.data.Dataset.from_tensor_slices(pairs).filter(lambda e: True)
    batches = full_batches_only(dataset, 8, "x").map(lambda b: (b["x"], b["y"]))
    assert [len(x) for x, _ in batches] == [8, 8]
    assert _constant_loss_model().evaluate(batches, verbose=0) == pytest.approx(1.0)


def _steps_and_weight_change(model):
    """(optimizer steps, largest weight change) over one epoch of 2 batches."""
    import tensorflow as tf

    model.compile(optimizer=keras_optimizer(), loss="mse", jit_compile=False)
    pairs = (np.ones((4, 2), "float32"), np.ones((4, 1), "float32"))
    dataset = tf.data.Dataset.from_tensor_slices(pairs).batch(2).filter(lambda x, y: True)
    model.fit(dataset, epochs=1, verbose=0)  # builds; one epoch
    before = [w.copy() for w in model.get_weights()]
    # A batch of zeros: zero gradients, so only weight decay moves weights.
    zeros = tf.data.Dataset.from_tensors((np.zeros((0, 2), "float32"), np.zeros((0, 1), "float32")))
    model.fit(zeros.filter(lambda x, y: False), epochs=1, verbose=0)
    change = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), before))
    return int(model.optimizer.iterations.numpy()), change


def keras_optimizer():
    import keras

    return keras.optimizers.AdamW(0.1, weight_decay=0.5)


def test_keras_takes_a_phantom_optimizer_step_when_data_runs_out():
    """Not worked around (yet): ordering the step after its batch with a
    control dependency fixed it but made TensorFlow steps without XLA 1.7x
    slower. XLA (the CLI's default on TensorFlow) does not show it."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    steps, change = _steps_and_weight_change(model)
    # 2 real steps + one phantom per epoch; the empty epoch decays weights.
    assert steps == 4 and change > 0


def test_arrays_reach_predict_and_evaluate_untuned_with_keras_own_results(monkeypatch):
    """The autotuning stall needs seconds of real work to show (measured in
    keras_workarounds' docstring), too slow for the suite; this checks the
    workaround: the batches Keras' array adapter would make, with tf.data
    autotuning off, and the same predictions and loss as Keras' own path."""
    import keras
    import tensorflow as tf

    import keras_clip
    from keras_clip.keras_workarounds import arrays_as_untuned_dataset
    from tests.helpers import tiny_batch

    model = keras_clip.CLIP.from_architecture("tiny-vit", vocabulary_size=100, context_length=16)
    model.compile()
    batch = {k: np.asarray(v) for k, v in tiny_batch(batch=12).items()}
    (dataset,), kwargs = arrays_as_untuned_dataset(
        ({**batch, "images": batch["images"].astype("float64")},), {"batch_size": 5, "verbose": 0}
    )
    assert kwargs == {"verbose": 0} and dataset.options().autotune.enabled is False
    assert [len(b["images"]) for b in dataset] == [5, 5, 2]
    assert next(iter(dataset))["images"].dtype == tf.float32
    from keras_clip.models import checked_calls

    seen = []

    def spy(args, kwargs):
        seen.append(arrays_as_untuned_dataset(args, kwargs))
        return seen[-1]

    monkeypatch.setattr(checked_calls, "arrays_as_untuned_dataset", spy)
    ours = model.predict(batch, batch_size=5, verbose=0)
    assert isinstance(seen[0][0][0], tf.data.Dataset)  # what Keras was given
    theirs = keras.Model.predict(model, batch, batch_size=5, verbose=0)
    for key in ("image_embeddings", "text_embeddings"):
        np.testing.assert_array_equal(ours[key], theirs[key])
    loss = model.evaluate(batch, batch_size=5, verbose=0, return_dict=True)["loss"]
    assert (
        loss
        == keras.Model.evaluate(model, batch, batch_size=5, verbose=0, return_dict=True)["loss"]
    )
    unchanged = ({"images": tf.constant(batch["images"])},), {}
    assert arrays_as_untuned_dataset(*unchanged) == unchanged  # tensors: Keras' path


def _fit_warnings(fit):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_keras_warns_falsely_that_input_of_unknown_length_ran_out():
    # keras-team/keras#23360: running to the end is how Keras learns an
    # unknown length, yet it warns at the end of the first epoch.
    model = _constant_loss_model()
    found = _fit_warnings(
        lambda: model.fit(_batches(drop_remainder=False), epochs=2, shuffle=False, verbose=0)
    )
    assert any("ran out of data" in message for message in found)


def test_without_false_out_of_data_warning_keeps_only_the_true_one():
    from keras_clip.keras_workarounds import without_false_out_of_data_warning

    model = _constant_loss_model()

    def fit(**kwargs):
        with without_false_out_of_data_warning(kwargs):
            model.fit(_batches(drop_remainder=False), shuffle=False, verbose=0, **kwargs)

    assert _fit_warnings(lambda: fit(epochs=2)) == []
    # Asked for more steps than the data has: that warning is true, and stays.
    found = _fit_warnings(lambda: fit(epochs=2, steps_per_epoch=5))
    assert any("ran out of data" in message for message in found)
