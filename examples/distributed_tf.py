"""Train CLIP with global negatives under tf.distribute.MirroredStrategy.

Every replica scores its part of the batch against the whole global batch,
so the loss and gradient are those of one device with the global batch. On
GPUs the strategy uses them all; on a CPU, --simulated-devices N splits it
into N logical devices (the same code path, for trying it out).

    KERAS_BACKEND=tensorflow python examples/distributed_tf.py --simulated-devices 2

Prints one JSON line: devices, loss, zero-shot accuracy, pairs per second.
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--simulated-devices", type=int, default=2, help="Logical CPU devices when there is no GPU."
    )
    parser.add_argument("--per-replica-batch", type=int, default=32)
    parser.add_argument(
        "--jsd-global-negatives",
        action="store_true",
        help="With --objective clip-lite/jsd: roll the global batch.",
    )
    import shapes_training

    shapes_training.add_common_arguments(parser)
    args = parser.parse_args()
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.simulated_devices
        )
    import keras

    if keras.backend.backend() != "tensorflow":
        parser.error("run with KERAS_BACKEND=tensorflow (see distributed_jax.py for JAX)")
    strategy = tf.distribute.MirroredStrategy()
    replicas = strategy.num_replicas_in_sync
    options = {"local_negatives": False} if args.jsd_global_negatives else None
    from keras_clip.training import train_on_shapes

    report, _, _ = train_on_shapes(
        args.per_replica_batch * replicas,
        build_scope=strategy.scope(),
        objective_options=options,
        **shapes_training.settings(args),
    )
    shapes_training.print_report({"strategy": "MirroredStrategy", "replicas": replicas, **report})


if __name__ == "__main__":
    main()
