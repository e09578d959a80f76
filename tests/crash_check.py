"""Run as `python -m tests.crash_check KILL train ARGS...`.

Runs `keras-clip train ARGS...` and sends itself SIGKILL (a crash with no
chance to clean up) where KILL says:
  0             never;
  N             right after global training step N (its save, if any, done);
  N:weights     while step N's checkpoint is written: half its weights file;
  N:rename      with step N's checkpoint written, before it is renamed;
  N:prune       after step N's checkpoint is renamed, before old ones go;
  N:state       while the epoch end at step N rewrites that step's state.
With STEP_LOG set, it appends "begin S" to that file when a `fit` call
starts at optimizer step S and "step S" after each step (after the step's
checkpoint is saved), so a test can tell what a kill lost.
"""

import os
import signal
import sys

import keras

from keras_clip import cli
from keras_clip import training
from keras_clip.training import checkpoints

_MODEL = []


def _step():
    return int(keras.ops.convert_to_numpy(_MODEL[0].optimizer.iterations))


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


class _Watch(keras.callbacks.Callback):
    def __init__(self, kill_step, log):
        super().__init__()
        self.kill_step = kill_step
        self.log = log

    def set_model(self, model):
        super().set_model(model)
        _MODEL[:] = [model]

    def _write(self, line):
        if self.log:
            with open(self.log, "a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())

    def on_train_begin(self, logs=None):
        self._write(f"begin {_step()}")

    def on_train_batch_end(self, batch, logs=None):
        self._write(f"step {_step()}")
        if self.kill_step and _step() >= self.kill_step:
            _die()


def _kill_inside(step, phase):
    """Patches the checkpoint writer to die in `phase` of step `step`'s save."""
    at_step = lambda: _MODEL and _step() == step  # noqa: E731
    save_weights = keras.Model.save_weights
    rename = os.rename
    complete = checkpoints.complete_checkpoints
    write = checkpoints._write_atomically

    def half_weights(self, path, *args, **kwargs):
        save_weights(self, path, *args, **kwargs)
        if phase == "weights" and at_step():
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            _die()

    def no_rename(source, target):
        if phase == "rename" and at_step() and ".incomplete-" in source:
            _die()
        rename(source, target)

    def no_prune(directory):
        if phase == "prune" and at_step():
            _die()
        return complete(directory)

    def half_state(path, text):
        if phase == "state" and at_step():
            with open(f"{path}.tmp", "w") as f:
                f.write(text[: len(text) // 2])
            _die()
        write(path, text)

    keras.Model.save_weights = half_weights
    os.rename = no_rename
    checkpoints.complete_checkpoints = no_prune
    checkpoints._write_atomically = half_state


def main():
    step, _, phase = sys.argv[1].partition(":")
    step = int(step)
    if phase:
        _kill_inside(step, phase)
    watch = _Watch(0 if phase else step, os.environ.get("STEP_LOG"))
    build_callbacks = training.training_callbacks

    def with_watch(*args, **kwargs):
        return build_callbacks(*args, **kwargs) + [watch]

    training.training_callbacks = with_watch
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
