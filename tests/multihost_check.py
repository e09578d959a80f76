"""Run as `python -m tests.multihost_check PROCESS_ID NUM_PROCESSES PORT OUT.npz`
(JAX, one CPU device per process; JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo).

Trains a tiny CLIP for one epoch (2 SGD steps at rate 1, global batches of
16) as one process, or as NUM_PROCESSES processes joined through
`keras.distribution.initialize` at 127.0.0.1:PORT with
`FullyShardedDataParallel` (each process feeds its own rows of every global
batch, as each reads its own shards). Process 0 writes the losses and the
weights, gathered from every process, to OUT.npz.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

GLOBAL_BATCH = 16


def main(process_id, num_processes, port, output):
    if num_processes > 1:
        keras.distribution.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    import jax
    from jax.experimental import multihost_utils

    import keras_clip
    from keras_clip.models import FullyShardedDataParallel
    from tests.helpers import tiny_batch

    if num_processes > 1:  # the rows are split by hand below, not by Keras
        distribution = FullyShardedDataParallel(min_size=64, auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(0)
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    batch = tiny_batch(batch=2 * GLOBAL_BATCH)
    local = GLOBAL_BATCH // num_processes
    rows = np.concatenate(
        [np.arange(local) + step * GLOBAL_BATCH + process_id * local for step in range(2)]
    )
    history = model.fit(
        {name: value[rows] for name, value in batch.items()},
        batch_size=local,
        epochs=1,
        verbose=0,
        shuffle=False,
    )

    def gathered(model):
        return [
            np.asarray(multihost_utils.process_allgather(v.value, tiled=True))
            for v in model.weights
        ]

    weights = gathered(model)
    checkpoint = {}
    if num_processes > 1:
        checkpoint = _sharded_checkpoint_round_trip(model, weights, gathered, f"{output}.steps")
    if process_id == 0:
        np.savez(
            output,
            loss=np.array(history.history["loss"]),
            devices=np.array(len(jax.devices())),
            sharded=np.array(
                sum(any(a is not None for a in v.value.sharding.spec) for v in model.weights)
                if num_processes > 1
                else 0
            ),
            **checkpoint,
            **{f"w{i}": w for i, w in enumerate(weights)},
        )


def _sharded_checkpoint_round_trip(model, weights, gathered, folder):
    import keras_clip
    from keras_clip.training.checkpoints import StepCheckpoint

    saving = StepCheckpoint(folder, sharded=True)
    saving.set_model(model)
    saving.save(2, 1, 0)
    keras.utils.set_random_seed(1)
    fresh = keras_clip.CLIP.from_architecture("tiny-vit")
    fresh.compile(optimizer=keras.optimizers.SGD(1.0))
    state = StepCheckpoint(folder, sharded=True).restore(fresh)
    state_folder = os.path.join(folder, "step-000000002", "state")
    return {
        "checkpoint_step": np.array(state["step"]),
        "shard_writers": np.array(sorted(n for n in os.listdir(state_folder) if "process_" in n)),
        "restored_equal": np.array(
            all(np.array_equal(a, b) for a, b in zip(weights, gathered(fresh)))
        ),
    }


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
