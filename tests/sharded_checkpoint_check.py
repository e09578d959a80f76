"""Run as `python -m tests.sharded_checkpoint_check DEVICES MODE FOLDER` (it
sets KERAS_BACKEND=jax and DEVICES simulated CPU devices itself).

A tiny CLIP trains one epoch (4 AdamW steps, batches of 8) under
`FullyShardedDataParallel` with a sharded `StepCheckpoint` saved every step.
MODE "train": once uninterrupted (its final variables to FOLDER/whole.npz),
then again in FOLDER/killed, keeping every variable after step 2's save in
FOLDER/step2.npz, and SIGKILLed while step 3's checkpoint is written (half
of its shard files gone). MODE "resume": a fresh model on DEVICES devices
restores FOLDER/killed and finishes the epoch; prints one JSON line: the
step it resumed at, whether every variable equals step2.npz bit for bit and
is sharded as planned on DEVICES devices, and the largest difference of the
final variables from the uninterrupted run's, relative to their scale.
"""

import json
import os
import signal
import sys

DEVICES = int(sys.argv[1])
os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES}"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_clip  # noqa: E402
from keras_clip.models.sharding import FullyShardedDataParallel  # noqa: E402
from keras_clip.models.sharding import fsdp_axes  # noqa: E402
from keras_clip.training import checkpoints  # noqa: E402
from keras_clip.training import sharded_state  # noqa: E402
from tests.helpers import tiny_batch  # noqa: E402

MIN_SIZE = 64


def build():
    keras.distribution.set_distribution(FullyShardedDataParallel(min_size=MIN_SIZE))
    keras.utils.set_random_seed(0)
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.optimizer.build(model.trainable_variables)
    return model


def state(model):
    return [np.asarray(v.value) for v in model.variables + model.optimizer.variables]


def fit(model, folder, callbacks=()):
    data = tf.data.Dataset.from_tensor_slices(tiny_batch(batch=32)).batch(8)
    checkpoint = checkpoints.StepCheckpoint(
        folder, every_steps=1, delete_on_finish=False, sharded=True
    )
    checkpoints.fit_resumable(model, data, 1, checkpoint, list(callbacks), verbose=0)


class KeepStep2(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == 2:
            np.savez(self.path, *state(self.model))


def die_inside_step_3():
    save = sharded_state.save_sharded_state

    def half_written(model, path):
        save(model, path)
        if int(model.optimizer.iterations) == 3:
            written = sorted(
                os.path.join(root, name) for root, _, names in os.walk(path) for name in names
            )
            for name in written[::2]:
                os.remove(name)
            os.kill(os.getpid(), signal.SIGKILL)

    sharded_state.save_sharded_state = half_written


def _spec(variable):
    spec = tuple(variable.value.sharding.spec)
    return spec + (None,) * (len(variable.shape) - len(spec))


def main(mode, folder):
    if mode == "train":
        model = build()
        fit(model, os.path.join(folder, "whole"))
        np.savez(os.path.join(folder, "whole.npz"), *state(model))
        die_inside_step_3()
        fit(build(), os.path.join(folder, "killed"), [KeepStep2(f"{folder}/step2.npz")])
        return 1  # not reached
    model = build()
    killed = os.path.join(folder, "killed")
    left = sorted(os.listdir(killed))
    resumed_at = checkpoints.StepCheckpoint(killed).restore(model)["step"]
    step2 = np.load(os.path.join(folder, "step2.npz"))
    equal = all(np.array_equal(a, step2[f"arr_{i}"]) for i, a in enumerate(state(model)))
    variables = model.variables + model.optimizer.variables
    planned = all(_spec(v) == fsdp_axes(v.shape, DEVICES, "batch", MIN_SIZE) for v in variables)
    sharded = sum(any(axis is not None for axis in v.value.sharding.spec) for v in variables)
    fit(model, killed)
    whole = np.load(os.path.join(folder, "whole.npz"))
    final = state(model)
    difference = max(
        float(np.max(np.abs(a - whole[f"arr_{i}"])) / max(1.0, float(np.max(np.abs(a)))))
        for i, a in enumerate(final)
        if a.size
    )
    report = {
        "devices": DEVICES,
        "left_by_the_kill": left,
        "resumed_at": resumed_at,
        "restored_equal": equal,
        "sharded_as_planned": planned,
        "sharded_variables": sharded,
        "final_step": int(model.optimizer.iterations),
        "final_difference_relative": difference,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[2], sys.argv[3]))
