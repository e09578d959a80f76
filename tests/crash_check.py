"""Run as `python -m tests.crash_check KILL_AT_STEP train ARGS...`.

Runs `keras-clip train ARGS...`; when KILL_AT_STEP > 0 the process sends
itself SIGKILL right after that global training step (a crash with no
chance to clean up), so a test can restart the same command and compare
the result with an uninterrupted run.
"""

import os
import signal
import sys

import keras

from keras_clip import cli
from keras_clip import training


class _KillAtStep(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main():
    kill_at = int(sys.argv[1])
    build_callbacks = training.training_callbacks

    def with_kill(*args):
        return build_callbacks(*args) + ([_KillAtStep(kill_at)] if kill_at else [])

    training.training_callbacks = with_kill
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
