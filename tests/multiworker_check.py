"""Run as `python -m tests.multiworker_check INDEX PORT0 PORT1 OUTPUT.npz`.

One of two TensorFlow workers on 127.0.0.1 (MultiWorkerMirroredStrategy):
trains a tiny CLIP (InfoNCE with global negatives) for 3 steps of a global
batch of 8, and the same on one device from the same weights, and writes
the final weights, both losses, the replica count and the largest weight
difference from the one-device run (relative to its largest update).
"""

import json
import os
import sys

INDEX, PORTS, OUTPUT = int(sys.argv[1]), sys.argv[2:4], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in PORTS]},
        "task": {"type": "worker", "index": INDEX},
    }
)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402

import keras_clip  # noqa: E402
from tests.helpers import tiny_batch  # noqa: E402


def main():
    keras.config.disable_traceback_filtering()
    keras.utils.set_random_seed(0)
    batch = tiny_batch(batch=24)
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(8)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    # The reference: one device, the same global batches, the same start.
    single = keras_clip.CLIP.from_architecture("tiny-vit")
    initial = single.get_weights()
    single.compile(optimizer=keras.optimizers.SGD(0.5))
    single_loss = single.fit(
        tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0
    ).history["loss"][0]
    with strategy.scope():
        model = keras_clip.CLIP.from_architecture("tiny-vit")
        model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(0.5))
    history = model.fit(dataset, epochs=1, verbose=0)
    largest_step = max(float(np.abs(a - b).max()) for a, b in zip(single.get_weights(), initial))
    difference = max(
        float(np.abs(a - b).max()) for a, b in zip(single.get_weights(), model.get_weights())
    )
    np.savez(
        OUTPUT,
        *model.get_weights(),
        loss=history.history["loss"][0],
        single_loss=single_loss,
        replicas=strategy.num_replicas_in_sync,
        relative_difference=difference / largest_step,
    )
    with open(OUTPUT + ".bugs.json", "w") as f:
        json.dump(_keras_bugs_still_there(dataset, initial), f)


class _KerasBuild(keras_clip.CLIP):
    """CLIP with Keras' own symbolic build (no workaround)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return keras.Model._maybe_symbolic_build(self, iterator, data_batch)


class _KerasLogs(keras_clip.CLIP):
    """CLIP with Keras' own step logs (no workaround)."""

    def train_step(self, *args, **kwargs):
        return keras.Model.train_step(self, *args, **kwargs)


def _keras_bugs_still_there(dataset, initial):
    """Whether plain Keras still fails where keras_clip.keras_workarounds
    steps in: a failing fit means the bug is there."""
    found = {}
    for name, model_class in (("build", _KerasBuild), ("logs", _KerasLogs)):
        with strategy.scope():
            model = model_class.from_architecture("tiny-vit")
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        try:
            model.fit(dataset, epochs=1, verbose=0)
            found[name] = "fit ran"
        except Exception as error:  # noqa: BLE001 - any failure is the bug
            found[name] = f"{type(error).__name__}: {str(error)[:200]}"
    return found


if __name__ == "__main__":
    main()
