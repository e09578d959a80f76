"""The Keras 3.15 bugs that `keras_clip.keras_workarounds` works around are
still there (each test fails once Keras fixes its bug: then drop the
workaround), and the workarounds give the right answer. The two
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
