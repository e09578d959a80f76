"""Step-level training checkpoints that survive a kill at any moment, and
a `fit` that resumes from them mid-epoch with the uninterrupted run's data.

A checkpoint is a folder `step-000001200/` holding `model.weights.h5` (the
model's and the optimizer's variables, with the logit scale) or, sharded
(`StepCheckpoint(sharded=True)`, JAX), a folder `state/` that each process
writes its own shards of (`sharded_state`), and `state.json` (the global
step, the epoch and how many of its batches are done). It is written under
a temporary name, every file and folder is fsync'ed, and only then is it
renamed to its final name: a folder with a final name is complete. Older checkpoints are deleted only after that, so
there is always one complete checkpoint once the first is written. Keras
only (no TensorFlow import); the folder must be on a POSIX file system
(rename and fsync are what make the writes atomic), shared by every host
when several train together (only the first process writes `state.json`
and renames).

Example:

```python
checkpoint = StepCheckpoint("ckpt/", every_steps=500)
history = fit_resumable(model, train, epochs=2, checkpoint=checkpoint,
                        callbacks=[keras_clip.data.DataReportCallback(train)])
```
"""

import json
import logging
import os
import re
import shutil

import keras

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.weights.h5"
SHARDED_STATE_FOLDER = "state"
STATE_FILE = "state.json"
_COMPLETE = re.compile(r"^step-(\d{9})$")
_TEMPORARY_PREFIX = ".incomplete-"


class StepCheckpoint(keras.callbacks.Callback):
    """Saves the training state every `every_steps` optimizer steps and at
    each epoch's end, atomically, keeping the newest `keep` checkpoints.

    Use it through `fit_resumable`, which restores the newest complete
    checkpoint and resumes at its step: in the same epoch, at the same
    batch, with the same data order and augmentations (datasets from
    `keras_clip.data.image_text_dataset` derive both from the seed and the
    epoch, and `DataReportCallback` sets the epoch).

    Args:
        directory: str, a local folder (made if missing) used for nothing
            else.
        every_steps: int or None. Save every this many optimizer steps;
            None saves at epoch ends only.
        keep: int >= 1, how many complete checkpoints to keep.
        delete_on_finish: bool. Delete the checkpoints when `fit` ends
            normally (as `keras.callbacks.BackupAndRestore` does), so that
            running the same command again trains anew.
        sharded: bool (JAX). Write each process's shards of the weights
            and optimizer state without gathering them (Orbax; see
            `sharded_state`), for `FullyShardedDataParallel` and several
            hosts. Restoring takes the current model's sharding: any
            device count. Either kind of checkpoint restores either way.

    Example:

    ```python
    checkpoint = StepCheckpoint("ckpt/", every_steps=2)
    fit_resumable(model, train, epochs=2, checkpoint=checkpoint)
    ```
    """

    def __init__(self, directory, every_steps=None, keep=2, delete_on_finish=True, sharded=False):
        super().__init__()
        if "://" in str(directory):
            raise ValueError(
                f"StepCheckpoint needs a local folder (atomic rename and fsync); got "
                f"{directory!r}. Checkpoint locally and copy the finished files out."
            )
        if every_steps is not None and (not isinstance(every_steps, int) or every_steps < 1):
            raise ValueError(f"every_steps must be a positive int or None, got {every_steps!r}.")
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive int, got {keep!r}.")
        self.directory = str(directory)
        self.every_steps = every_steps
        self.keep = keep
        self.delete_on_finish = delete_on_finish
        if sharded and keras.backend.backend() != "jax":
            raise ValueError(
                "StepCheckpoint(sharded=True) needs the JAX backend (sharded weights are "
                f"a JAX feature); got {keras.backend.backend()!r}."
            )
        if sharded:  # now, not at the first save
            from keras_clip.training.sharded_state import require_orbax

            require_orbax()
        self.sharded = bool(sharded)
        # Batches of the current epoch done before this fit call (a resume).
        self.batch_offset = 0
        self._epoch = 0
        self._last_saved_step = None

    # === Saving ===

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = _global_step(self.model)
        if self.every_steps and step % self.every_steps == 0:
            self.save(step, self._epoch, self.batch_offset + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        step = _global_step(self.model)
        state = {"step": step, "epoch": epoch + 1, "batch": 0}
        if step == self._last_saved_step:
            # Saved at this step already: only its position moves on.
            if _is_first_process():
                _write_atomically(
                    os.path.join(self.directory, _name(step), STATE_FILE), json.dumps(state)
                )
            _wait_for_every_process("keras_clip_checkpoint_state")
        else:
            self.save(step, epoch + 1, 0)
        self.batch_offset = 0

    def on_train_end(self, logs=None):
        if self.delete_on_finish and not self.model.stop_training and _is_first_process():
            shutil.rmtree(self.directory, ignore_errors=True)

    def save(self, step, epoch, batch):
        """Writes checkpoint `step` (position: `batch` batches of `epoch` done).
        On several hosts every process calls it; the first one alone
        writes `state.json`, renames and prunes."""
        first = _is_first_process()
        temporary = os.path.join(self.directory, f"{_TEMPORARY_PREFIX}{_name(step)}")
        if first:
            os.makedirs(self.directory, exist_ok=True)
            shutil.rmtree(temporary, ignore_errors=True)
            os.makedirs(temporary)
        _wait_for_every_process("keras_clip_checkpoint_begin")
        if self.sharded:
            from keras_clip.training.sharded_state import save_sharded_state

            save_sharded_state(self.model, os.path.join(temporary, SHARDED_STATE_FOLDER))
        elif first:
            self.model.save_weights(os.path.join(temporary, WEIGHTS_FILE))
        if first:
            state = {"step": step, "epoch": epoch, "batch": batch}
            with open(os.path.join(temporary, STATE_FILE), "w") as f:
                json.dump(state, f)
            _fsync_tree(temporary)
            final = os.path.join(self.directory, _name(step))
            shutil.rmtree(final, ignore_errors=True)
            os.rename(temporary, final)
            _fsync(self.directory)
            for old in complete_checkpoints(self.directory)[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        self._last_saved_step = step
        _wait_for_every_process("keras_clip_checkpoint_end")

    # === Restoring ===

    def restore(self, model):
        """Loads the newest complete checkpoint into `model` (built, and
        compiled when it has an optimizer).

        Returns:
            its state dict ("step", "epoch", "batch"), or None when there is
            none. A checkpoint that fails to load is reported and the one
            before it is tried.
        """
        if not model.built:
            raise ValueError("Build the model (e.g. call it on a batch) before restoring.")
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for folder in reversed(complete_checkpoints(self.directory)):
            try:
                with open(os.path.join(folder, STATE_FILE)) as f:
                    state = json.load(f)
                sharded = os.path.join(folder, SHARDED_STATE_FOLDER)
                if os.path.isdir(sharded):
                    from keras_clip.training.sharded_state import restore_sharded_state

                    restore_sharded_state(model, sharded)
                else:
                    model.load_weights(os.path.join(folder, WEIGHTS_FILE))
            except (OSError, ValueError, KeyError) as error:
                logger.warning("Skipping checkpoint %s, which does not load: %s", folder, error)
                continue
            self._last_saved_step = state["step"]
            return state
        return None


def complete_checkpoints(directory):
    """The complete checkpoint folders in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    steps = sorted(
        int(match.group(1)) for match in map(_COMPLETE.match, os.listdir(directory)) if match
    )
    return [os.path.join(directory, _name(step)) for step in steps]


def fit_resumable(model, dataset, epochs, checkpoint, callbacks=(), **fit_arguments):
    """`model.fit(dataset, epochs=...)` that first resumes from `checkpoint`.

    With no checkpoint this is one `fit`. Resumed at an epoch boundary, it
    is one `fit` from that epoch. Resumed mid-epoch, it first finishes that
    epoch on `dataset.skip(batches done)` (a separate `fit` call, since
    Keras learns an epoch's length from the first epoch of a call), then
    fits the remaining epochs; the histories are joined. Skipped batches are
    still read and decoded (tf.data cannot seek into a pass).

    Args:
        model: a compiled, built Keras model.
        dataset: a training `tf.data.Dataset`, best from
            `keras_clip.data.image_text_dataset` (with `DataReportCallback`
            among `callbacks`, so that a resumed epoch sees its own order).
        epochs: int, the run's total number of epochs.
        checkpoint: a `StepCheckpoint`.
        callbacks: other callbacks.
        **fit_arguments: passed to `model.fit` (not `initial_epoch`).

    Returns:
        a `keras.callbacks.History` of the epochs run by this call.
    """
    callbacks = list(callbacks) + ([] if checkpoint in callbacks else [checkpoint])
    state = checkpoint.restore(model)
    first_epoch = 0 if state is None else state["epoch"]
    partial = None
    if state is not None:
        logger.warning(
            "Resuming from %s: step %d, epoch %d, batch %d.",
            checkpoint.directory,
            state["step"],
            state["epoch"] + 1,
            state["batch"],
        )
    if state is not None and state["batch"] and first_epoch < epochs:
        # DataReportCallback holds the dataset's state (its epoch) itself.
        rest = dataset.skip(state["batch"])
        checkpoint.batch_offset = state["batch"]
        delete, checkpoint.delete_on_finish = checkpoint.delete_on_finish, False
        partial = model.fit(
            rest,
            initial_epoch=first_epoch,
            epochs=first_epoch + 1,
            callbacks=callbacks,
            **fit_arguments,
        )
        checkpoint.delete_on_finish = delete
        first_epoch += 1
    history = model.fit(
        dataset, initial_epoch=first_epoch, epochs=epochs, callbacks=callbacks, **fit_arguments
    )
    if partial is not None:
        for key, values in partial.history.items():
            history.history[key] = values + history.history.get(key, [])
        history.epoch = partial.epoch + history.epoch
    return history


def _global_step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _name(step):
    return f"step-{step:09d}"


def _is_first_process():
    if keras.backend.backend() != "jax":
        return True
    import jax

    return jax.process_index() == 0


def _wait_for_every_process(name):
    """A barrier across hosts (JAX multi-process); nothing on one host."""
    if keras.backend.backend() == "jax":
        import jax

        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)


def _fsync_tree(folder):
    """Flushes every file and folder under `folder`, then `folder` itself."""
    for root, folders, files in os.walk(folder, topdown=False):
        for name in files + folders:
            _fsync(os.path.join(root, name))
    _fsync(folder)


def _fsync(path):
    """Flushes a file or a folder (its entries) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_atomically(path, text):
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync(os.path.dirname(path))
