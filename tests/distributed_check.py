"""Run as `python -m tests.distributed_check OBJECTIVE...` with KERAS_BACKEND set.

Trains one SGD(lr=1) step of a tiny CLIP on a global batch of 8, on one
device and on 2 simulated devices (TensorFlow MirroredStrategy over logical
CPUs; JAX DataParallel over forced host devices), from the same weights, and
prints one JSON line, per objective, with the largest loss and weight
differences. With lr = 1, a weight difference is a gradient difference.

On TensorFlow the global-negatives step runs both as a graph (what `fit`
does by default) and eagerly (`run_eagerly=True`, where every shape is
known); the other steps, references and the local-negatives one, run
eagerly: a traced train step costs ~5 s here, an eager one well under 1 s.
"""

import json
import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_clip  # noqa: E402
from tests.helpers import tiny_batch  # noqa: E402


def build(objective, local_negatives, weights=None, eager=False):
    if objective == "jsd":  # both directions, to cover the text-side roll
        layer = keras_clip.objectives.JSDLoss(symmetric=True, local_negatives=local_negatives)
    elif objective == "siglip":
        # Bias 0, not -10: at -10 the negatives barely move the loss at
        # initialisation, and the check could not show the gather matters.
        layer = keras_clip.objectives.SigLIPLoss(
            init_logit_bias=0.0, local_negatives=local_negatives
        )
    elif objective == "infonce-chunked":  # blocks of 3 rows, not dividing 4
        layer = keras_clip.objectives.InfoNCELoss(local_negatives=local_negatives, chunk_size=3)
    else:
        layer = keras_clip.objectives.InfoNCELoss(local_negatives=local_negatives)
    model = keras_clip.CLIP.from_architecture("tiny-vit", objective=layer)
    if weights is not None:
        model.set_weights(weights)
    # Without XLA on TensorFlow (strategies run without it anyway): the check
    # is about the distribution, and each XLA compile here cost ~5 s.
    model.compile(
        optimizer=keras.optimizers.SGD(1.0),
        jit_compile=BACKEND != "tensorflow",
        run_eagerly=eager and BACKEND == "tensorflow",
    )
    return model


METRICS = ("i2t_recall@1", "t2i_recall@1", "mi")


def step(model, batch):
    history = model.fit(batch, batch_size=8, epochs=1, shuffle=False, verbose=0)
    # SigLIP logs no "mi" (it bounds no mutual information).
    metrics = {name: history.history[name][0] for name in METRICS if name in history.history}
    return history.history["loss"][0], model.get_weights(), metrics


def step_local(strategy, objective, initial, batch):
    with strategy.scope():
        model = build(objective, True, initial, eager=True)
    return step(model, batch)


def compare(initial, single, distributed):
    """Loss difference, and the largest gradient difference relative to the
    largest gradient (with SGD(1), the step is the gradient)."""
    loss_a, weights_a = single[:2]
    loss_b, weights_b = distributed[:2]
    largest_step = max(float(np.max(np.abs(a - w))) for a, w in zip(weights_a, initial))
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_a, weights_b))
    report = {
        "loss": loss_a,
        "loss_difference": abs(loss_a - loss_b),
        "gradient_difference": difference / largest_step,
    }
    if len(single) > 2 and len(distributed) > 2:  # the in-training metrics
        report["metric_difference"] = max(
            abs(single[2][name] - distributed[2][name]) for name in single[2]
        )
    return report


_STRATEGY = []


def mirrored_strategy():
    """One MirroredStrategy for the process (a second one fails here)."""
    if not _STRATEGY:
        _STRATEGY.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _STRATEGY[0]


def check(objective):
    """One objective's report: single device against two devices."""
    batch = tiny_batch()
    keras.utils.set_random_seed(0)
    initial = build(objective, False).get_weights()
    single = step(build(objective, False, initial, eager=True), batch)
    report = {}
    if BACKEND == "jax":
        devices = keras.distribution.list_devices("cpu")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        report["devices"] = len(devices)
        report["global"] = compare(initial, single, step(build(objective, False, initial), batch))
        keras.distribution.set_distribution(None)
    else:
        strategy = mirrored_strategy()
        report["devices"] = strategy.num_replicas_in_sync
        with strategy.scope():
            global_model = build(objective, False, initial)
        report["global"] = compare(initial, single, step(global_model, batch))
        with strategy.scope():
            eager_model = build(objective, False, initial, eager=True)
        report["global_eager"] = compare(initial, single, step(eager_model, batch))
        local = step_local(strategy, objective, initial, batch)
        report["local"] = compare(initial, single, local)
        # The same per-replica objective run by hand on each half: the
        # distributed step must equal the mean of the two halves.
        halves = [
            step(
                build(objective, True, initial, eager=True),
                {k: v[i * 4 : (i + 1) * 4] for k, v in batch.items()},
            )[:2]
            for i in range(2)
        ]
        mean_loss = (halves[0][0] + halves[1][0]) / 2
        mean_weights = [(a + b) / 2 for a, b in zip(halves[0][1], halves[1][1])]
        report["local_vs_halves"] = compare(initial, (mean_loss, mean_weights), local)
    return report


if __name__ == "__main__":
    print(json.dumps({objective: check(objective) for objective in sys.argv[1:]}))
