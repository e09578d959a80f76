"""Run as `python -m tests.fsdp_check` (it sets KERAS_BACKEND=jax and 8
simulated CPU devices itself).

For a ViT CLIP (InfoNCE) and a SigLIP model: trains 2 SGD steps (learning
rate 1) on global batches of 16 on one device and with
`FullyShardedDataParallel` over the 8 devices, from the same weights;
prints one JSON line per objective: the largest loss difference and the
largest weight difference relative to the weight's scale (|a - b| / max(1,
max |a|): with SGD at rate 1 a gradient difference). For the InfoNCE model
also 2 AdamW steps sharded: how many weights and optimizer variables are
sharded of how many should be, device 0's bytes of all the variables
against their total and the replicated part, and whether a step checkpoint
restored into a new sharded model gives every variable back, equal and
sharded as before, and XLA's compiled memory analysis of one train step per
device, data parallel against FSDP. Then `keras-clip train --fsdp` on a folder of captioned
images with step checkpoints every step: one JSON line with its exit code,
the devices its report names, whether the saved model loads and how many
step checkpoints were written shard by shard.
"""

import json
import os
import tempfile

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_clip  # noqa: E402
from keras_clip.models.sharding import FullyShardedDataParallel  # noqa: E402
from keras_clip.models.sharding import fsdp_axes  # noqa: E402
from keras_clip.models.sharding import train_step_memory  # noqa: E402
from keras_clip.training.checkpoints import StepCheckpoint  # noqa: E402
from tests.helpers import tiny_batch  # noqa: E402

MIN_SIZE = 64
BATCH = tiny_batch(batch=32)


def train(objective, distribution, optimizer, weights=None, callbacks=()):
    """`optimizer`: its class and learning rate, built once the distribution
    is set (its variables too must be created under it)."""
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(0)
    if objective == "siglip":  # bias 0: the negatives move the loss from the start
        objective = keras_clip.objectives.SigLIPLoss(init_logit_bias=0.0)
    model = keras_clip.CLIP.from_architecture("tiny-vit", objective=objective)
    if weights is not None:
        model.set_weights(weights)
    start = model.get_weights()
    model.compile(optimizer=optimizer[0](optimizer[1]))
    if callbacks == "no fit":
        model.optimizer.build(model.trainable_variables)
        return model, start, None
    history = model.fit(
        BATCH, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks)
    )
    keras.distribution.set_distribution(None)
    return model, start, history.history["loss"]


def sharding_report(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    could = {id(v) for v in variables if any(fsdp_axes(v.shape, 8, "batch", MIN_SIZE))}
    sharded = {id(v) for v in variables if any(axis is not None for axis in v.value.sharding.spec)}
    device = jax.devices()[0]
    mine = sum(
        shard.data.nbytes
        for v in variables
        for shard in v.value.addressable_shards
        if shard.device == device
    )
    replicated = sum(v.value.nbytes for v in variables if id(v) not in could)
    return {
        "variables": len(variables),
        "could_shard": len(could),
        "sharded": len(sharded),
        "sharded_as_planned": sharded == could,
        "optimizer_sharded": sum(id(v) in sharded for v in model.optimizer.variables),
        "device0_bytes": mine,
        "total_bytes": sum(v.value.nbytes for v in variables),
        "replicated_bytes": replicated,
    }


def main():
    # One-device runs first: once a distribution has been set, state such
    # as the global seed generator lives on all 8 devices.
    singles = {
        objective: train(objective, None, (keras.optimizers.SGD, 1.0))
        for objective in ("infonce", "siglip")
    }
    for objective, (single, start, single_loss) in singles.items():
        fsdp = FullyShardedDataParallel(min_size=MIN_SIZE)
        sharded, _, sharded_loss = train(objective, fsdp, (keras.optimizers.SGD, 1.0), start)
        weight_diff = max(
            float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
            for a, b in zip(single.get_weights(), sharded.get_weights())
        )
        report = {
            "objective": objective,
            "devices": len(jax.devices()),
            "loss_diff": float(np.max(np.abs(np.subtract(single_loss, sharded_loss)))),
            "weight_diff_relative": weight_diff,
        }
        if objective == "infonce":  # the sharding does not depend on the objective
            report.update(_adamw_sharding_and_checkpoint(objective, fsdp, start))
            report.update(_xla_memory(objective, fsdp, start))
        print(json.dumps(report), flush=True)
    print(json.dumps(train_from_the_command_line()), flush=True)


def _adamw_sharding_and_checkpoint(objective, fsdp, start):
    """2 AdamW steps sharded, saving a step checkpoint, restored into a new
    sharded model: the sharding report, and whether every weight and
    optimizer variable came back equal and sharded as before."""
    adam = (keras.optimizers.AdamW, 1e-3)
    with tempfile.TemporaryDirectory() as folder:
        saving = StepCheckpoint(folder, every_steps=1, delete_on_finish=False)
        adamw, _, _ = train(objective, fsdp, adam, start, [saving])
        fresh, _, _ = train(objective, fsdp, adam, None, "no fit")
        state = StepCheckpoint(folder).restore(fresh)
    restored = [
        np.array_equal(np.asarray(a.value), np.asarray(b.value))
        for a, b in zip(
            adamw.variables + adamw.optimizer.variables, fresh.variables + fresh.optimizer.variables
        )
    ]
    return {
        **sharding_report(adamw),
        "checkpoint_step": state["step"],
        "restored_equal": all(restored),
        "restored_sharding": sharding_report(fresh)["sharded_as_planned"],
    }


_sharded_saves = [0]


def _xla_memory(objective, fsdp, start):
    """XLA's compiled memory analysis of one AdamW step (global batch 16),
    bytes per device, data parallel and FSDP, and the batch slice's bytes."""
    inputs = {name: ((16,) + value.shape[1:], value.dtype.name) for name, value in BATCH.items()}
    memory = {}
    for name, distribution in (
        ("data_parallel", keras.distribution.DataParallel()),
        ("fsdp", fsdp),
    ):
        model, _, _ = train(
            objective, distribution, (keras.optimizers.AdamW, 1e-3), start, "no fit"
        )
        memory[f"{name}_argument_bytes"] = train_step_memory(model, inputs, distribution)[
            "argument"
        ]
        keras.distribution.set_distribution(None)
    slice_bytes = sum(value[:2].nbytes for value in BATCH.values())  # 16 rows / 8 devices
    return {**memory, "batch_slice_bytes": slice_bytes}


def train_from_the_command_line():
    """With step checkpoints every step: counts those written shard by shard."""
    from keras_clip import cli
    from keras_clip.training import sharded_state
    from tests import image_folders

    save = sharded_state.save_sharded_state

    def counted(model, path):
        _sharded_saves[0] += 1
        save(model, path)

    sharded_state.save_sharded_state = counted

    with tempfile.TemporaryDirectory() as folder:
        image_folders.build_folder(os.path.join(folder, "photos"), "jsonl")
        code = cli.main(
            ["train", os.path.join(folder, "photos"), "--fsdp", "--architecture", "tiny-vit"]
            + ["--epochs", "1", "--batch-size", "8", "--vocabulary-size", "100"]
            + ["--context-length", "16", "--verbose", "0", "--output", f"{folder}/out"]
            + ["--checkpoint-dir", f"{folder}/checkpoints", "--save-every-steps", "1"]
        )
        with open(f"{folder}/out/train_report.json") as f:
            report = json.load(f)
        reloaded = keras.saving.load_model(f"{folder}/out/model.keras")
        return {
            "command": "train --fsdp",
            "exit_code": code,
            "fsdp_devices": report["fsdp_devices"],
            "loss": report["history"]["loss"],
            "reloaded_parameters": reloaded.count_params(),
            "sharded_step_checkpoints": _sharded_saves[0],
        }


if __name__ == "__main__":
    main()
