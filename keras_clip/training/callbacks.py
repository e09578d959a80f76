"""Training callbacks (Keras only; no TensorFlow import)."""

import math

import keras


class NonFiniteLossError(RuntimeError):
    """Raised by `StopOnNonFiniteLoss` when the loss stops being finite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, naming the step.

    Unlike `keras.callbacks.TerminateOnNaN`, it raises, so `fit` does not
    finish normally: `BackupAndRestore` keeps its last (finite) backup, and
    the error says the global step (optimizer iterations), the epoch and the
    batch where it happened.

    Example:

    ```python
    model.fit(train, epochs=10, callbacks=[StopOnNonFiniteLoss()])
    # NonFiniteLossError: The loss became nan at step 1234 (epoch 3, batch 17) ...
    ```
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.model.stop_training = True
        raise NonFiniteLossError(
            f"The loss became {float(loss)} at step {step} (epoch {self._epoch + 1}, "
            f"batch {batch + 1}); training stopped. Lower the learning rate, check "
            "the inputs for NaN or infinite values, or train in float32."
        )
