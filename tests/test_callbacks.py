"""Training callbacks."""

import numpy as np
import pytest

import keras_clip
from keras_clip.training.callbacks import NonFiniteLossError
from keras_clip.training.callbacks import StopOnNonFiniteLoss
from tests.helpers import tiny_batch


def test_stop_on_non_finite_loss_names_the_step():
    batch = tiny_batch(batch=32)
    batch["images"][20] = np.nan  # the third batch of 8
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    model.compile()
    with pytest.raises(NonFiniteLossError, match=r"became nan at step 3 \(epoch 1, batch 3\)"):
        model.fit(
            batch,
            batch_size=8,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[StopOnNonFiniteLoss()],
        )
    assert int(np.asarray(model.optimizer.iterations)) == 3  # stopped there


def test_stop_on_non_finite_loss_lets_finite_training_finish():
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    model.compile()
    history = model.fit(
        tiny_batch(batch=16), batch_size=8, epochs=2, verbose=0, callbacks=[StopOnNonFiniteLoss()]
    )
    assert len(history.history["loss"]) == 2
