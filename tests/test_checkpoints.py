"""StepCheckpoint and fit_resumable in one process, on every backend: the
files a save leaves, a corrupt newest checkpoint, and a mid-epoch resume
that ends with the uninterrupted run's weights."""

import json
import os

import keras
import numpy as np
import pytest

from keras_clip.training import checkpoints
from keras_clip.training.checkpoints import StepCheckpoint
from keras_clip.training.checkpoints import fit_resumable


class _Interrupt(Exception):
    pass


class _StopAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == self.step:
            raise _Interrupt()


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(0.05, weight_decay=0.1), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)  # batches of 8: 5 steps an epoch


def test_saves_every_k_steps_and_keeps_the_newest(tmp_path):
    model = _model()
    checkpoint = StepCheckpoint(str(tmp_path), every_steps=2, keep=2, delete_on_finish=False)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[checkpoint], verbose=0)
    names = [os.path.basename(p) for p in checkpoints.complete_checkpoints(str(tmp_path))]
    assert names == ["step-000000008", "step-000000010"]
    assert sorted(os.listdir(tmp_path)) == names  # no temporary left behind
    with open(tmp_path / "step-000000010" / "state.json") as f:
        assert json.load(f) == {"step": 10, "epoch": 2, "batch": 0}
    with open(tmp_path / "step-000000008" / "state.json") as f:
        assert json.load(f) == {"step": 8, "epoch": 1, "batch": 3}
    fresh = _model()
    fresh.optimizer.build(fresh.trainable_variables)
    assert StepCheckpoint(str(tmp_path)).restore(fresh)["step"] == 10
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 10
    # A corrupt newest checkpoint is passed over for the one before.
    with open(tmp_path / "step-000000010" / checkpoints.WEIGHTS_FILE, "wb") as f:
        f.write(b"not hdf5")
    assert StepCheckpoint(str(tmp_path)).restore(_model())["step"] == 8


def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path):
    import tensorflow as tf

    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    straight = _model()
    fit_resumable(
        straight, dataset, 3, StepCheckpoint(str(tmp_path / "a"), every_steps=3), verbose=0
    )
    assert not os.path.exists(tmp_path / "a")  # deleted when the run finished

    interrupted = _model()
    checkpoint = StepCheckpoint(str(tmp_path / "b"), every_steps=3)
    with pytest.raises(_Interrupt):
        fit_resumable(interrupted, dataset, 3, checkpoint, callbacks=[_StopAt(8)], verbose=0)
    resumed = _model()
    history = fit_resumable(
        resumed, dataset, 3, StepCheckpoint(str(tmp_path / "b"), every_steps=3), verbose=0
    )
    # Resumed at step 6 (epoch 2, batch 1): the rest of epoch 2, then epoch 3.
    assert history.epoch == [1, 2] and len(history.history["loss"]) == 2
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 15
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="local folder"):
        StepCheckpoint("gs://bucket/ckpt")
    with pytest.raises(ValueError, match="every_steps"):
        StepCheckpoint(str(tmp_path), every_steps=0)
    with pytest.raises(ValueError, match="keep"):
        StepCheckpoint(str(tmp_path), keep=0)
