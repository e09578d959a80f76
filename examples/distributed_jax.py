"""Train CLIP data-parallel on JAX with keras.distribution.DataParallel.

JAX shards one global computation over the devices: the logits are the
global batch's, so every example meets every other as a negative with no
extra code. On a CPU, --simulated-devices N makes XLA expose N host devices
(it must be set before JAX starts, which this script does); on GPUs it uses
them all.

    python examples/distributed_jax.py --simulated-devices 2

Prints one JSON line: devices, loss, zero-shot accuracy, pairs per second.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--simulated-devices",
        type=int,
        default=2,
        help="Host devices XLA exposes when there is no GPU.",
    )
    parser.add_argument("--per-device-batch", type=int, default=32)
    # The backend and device count must be set before Keras and JAX load.
    known, _ = parser.parse_known_args()
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_"
        f"platform_device_count={known.simulated_devices}"
    ).strip()
    import keras
    import shapes_training

    shapes_training.add_common_arguments(parser)
    args = parser.parse_args()

    if keras.backend.backend() != "jax":
        parser.error("keras was imported with another backend; run this script directly")
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    from keras_clip.training import train_on_shapes

    report, _, _ = train_on_shapes(
        args.per_device_batch * len(devices), **shapes_training.settings(args)
    )
    shapes_training.print_report(
        {"distribution": "DataParallel", "devices": len(devices), **report}
    )


if __name__ == "__main__":
    main()
