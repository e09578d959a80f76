"""Micro-batches enlarge the pool of negatives: 4 slices of 16 train as one
batch of 64 (same loss, same gradient), on every backend."""

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models.micro_batches import encode_in_slices
from tests.helpers import tiny_batch
from tests.helpers import to_numpy


def _objective(name):
    if name == "infonce-chunked":  # rows in blocks of 24 (not dividing 64)
        return keras_clip.objectives.InfoNCELoss(chunk_size=24)
    return name


def _build(objective, micro_batches=1):
    if objective == "clip-lite":  # BatchNorm in its projection heads
        return keras_clip.CLIPLite.from_architecture("tiny-vit", micro_batches=micro_batches)
    return keras_clip.CLIP.from_architecture(
        "tiny-vit", objective=_objective(objective), micro_batches=micro_batches
    )


def _sgd_model(objective, micro_batches, weights, jit_compile="auto"):
    model = _build(objective, micro_batches)
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=jit_compile)
    return model


def _step(model, batch, weights):
    """Loss and weights after one SGD(lr=1) step from `weights`."""
    model.set_weights(weights)
    history = model.fit(batch, batch_size=len(batch["images"]), epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0], model.get_weights()


def _assert_same_step(whole, sliced, initial):
    """Equal losses (1e-5 relative) and steps (1e-5 of the largest step)."""
    (loss_whole, weights_whole), (loss_sliced, weights_sliced) = whole, sliced
    assert abs(loss_whole - loss_sliced) <= 1e-5 * abs(loss_whole)
    # With SGD(lr=1) the step is the gradient.
    largest_step = max(np.max(np.abs(w - i)) for w, i in zip(weights_whole, initial))
    assert largest_step > 1e-3
    difference = max(np.max(np.abs(a - b)) for a, b in zip(weights_whole, weights_sliced))
    assert difference <= 1e-5 * largest_step


# The slicing is the model's (every backend: plain and BatchNorm towers);
# what each objective adds is backend-neutral keras.ops, checked on the
# backend that runs it fastest (PyTorch: ~1 s; a JAX compile ~30 s).
_TORCH = pytest.mark.backend("torch")


@pytest.mark.parametrize(
    "objective",
    [
        "infonce",
        pytest.param("siglip", marks=_TORCH),
        pytest.param("infonce-chunked", marks=_TORCH),
        "clip-lite",
    ],
)
def test_four_micro_batches_of_16_train_as_one_batch_of_64(objective):
    batch = tiny_batch(batch=64, seed=3)
    initial = _build(objective).get_weights()
    # The chunked loss is checked against the plain one, sliced four ways.
    whole_model = _sgd_model(objective.replace("-chunked", ""), 1, initial)
    loss_whole, weights_whole = _step(whole_model, batch, initial)
    sliced = _step(_sgd_model(objective, 4, initial), batch, initial)
    _assert_same_step((loss_whole, weights_whole), sliced, initial)
    if objective == "infonce":
        # Averaging the gradients of 4 separate batches of 16 (plain
        # accumulation, 15 negatives each) gives a different step.
        quarters = [
            _step(whole_model, {k: v[i::4] for k, v in batch.items()}, initial)[1] for i in range(4)
        ]
        averaged = [np.mean([q[n] for q in quarters], axis=0) for n in range(len(initial))]
        assert max(np.max(np.abs(a - b)) for a, b in zip(weights_whole, averaged)) > 1e-3


@pytest.mark.backend("tensorflow")
def test_micro_batches_under_xla_train_as_one_batch():
    """TensorFlow's slices loop over a dynamic batch dimension; Keras keeps
    XLA off on CPU by default, so this compiles the step with XLA on (2
    slices: the compile time grows with their number)."""
    batch = tiny_batch(batch=16, seed=3)
    initial = keras_clip.CLIP.from_architecture("tiny-vit").get_weights()
    whole = _step(_sgd_model("infonce", 1, initial), batch, initial)
    sliced_model = _sgd_model("infonce", 2, initial, jit_compile=True)
    assert sliced_model.jit_compile  # Keras turns it off for unsupported layers
    _assert_same_step(whole, _step(sliced_model, batch, initial), initial)


def test_uneven_slices_and_a_batch_smaller_than_the_slices():
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    batch = tiny_batch(batch=10)
    whole = to_numpy(model.encode_text(batch["token_ids"]))
    for micro_batches in (4, 16):  # slices of 3, 3, 3, 1; and 10 slices of 1
        sliced = encode_in_slices(model.encode_text, batch["token_ids"], micro_batches, model)
        np.testing.assert_allclose(to_numpy(sliced), whole, atol=1e-6)


def test_micro_batches_only_in_training_and_in_the_config():
    model = keras_clip.CLIP.from_architecture("tiny-vit", micro_batches=4)
    assert model.get_config()["micro_batches"] == 4
    assert keras_clip.CLIP.from_config(model.get_config()).micro_batches == 4
    with pytest.raises(ValueError, match="micro_batches must be a positive integer"):
        keras_clip.CLIP.from_architecture("tiny-vit", micro_batches=0)


def test_batchnorm_statistics_update_once_per_slice():
    """The modified ResNet (BatchNorm) trains with slices on every backend;
    the backward pass's recomputation does not update the moving
    statistics again: after a training step they equal those of a plain
    training-mode forward pass (one update per slice)."""
    batch = tiny_batch(batch=8, image_size=32)
    model = keras_clip.CLIP.from_architecture("tiny-rn", image_size=32, micro_batches=2)
    initial = model.get_weights()
    initial_statistics = [to_numpy(v) for v in model.non_trainable_variables]
    model(batch, training=True)
    forward_only = [to_numpy(v) for v in model.non_trainable_variables]
    model.set_weights(initial)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    history = model.fit(batch, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after_step = [to_numpy(v) for v in model.non_trainable_variables]
    moved = [not np.allclose(a, i) for a, i in zip(forward_only, initial_statistics)]
    assert any(moved)
    for a, b in zip(forward_only, after_step):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
