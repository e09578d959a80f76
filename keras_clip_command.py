"""The `keras-clip` console script.

Importing `keras_clip` imports Keras and, on the TensorFlow backend,
TensorFlow, whose native code logs about CUDA and CPU features on a plain
CPU machine (one line reads "failed call to cuInit: CUDA error", which looks
like a failure and is not). So this launcher, which lives outside the
package, quiets that logging before anything imports TensorFlow: it sets
TF_CPP_MIN_LOG_LEVEL=3 unless the environment sets it, and, at that level,
hides what the native code writes to stderr while TensorFlow loads and
finds its devices. While the command runs, it also drops the image
libraries' messages about corrupt files (`keras_clip.cli.native_messages`;
the data report counts those files) and TensorFlow's tf.function retracing
warning. `TF_CPP_MIN_LOG_LEVEL=0 keras-clip ...` shows it all.

On the JAX and PyTorch backends a missing engine gives one line naming the
extra to install, and TensorFlow (which reads the data) sees no GPU.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def _native_stderr_hidden():
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# The package extra that installs each backend's engine.
BACKEND_EXTRAS = {"jax": "jax", "torch": "torch"}


def _missing_backend(error):
    """One line for a backend whose engine is not installed, else None."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend in BACKEND_EXTRAS and (error.name or "").split(".")[0] in ("jax", "jaxlib", "torch"):
        return (
            f"keras-clip: KERAS_BACKEND={backend} needs {error.name.split('.')[0]}, which is "
            f"not installed: pip install 'keras-clip[{BACKEND_EXTRAS[backend]}]' (or unset "
            "KERAS_BACKEND for TensorFlow)."
        )
    return None


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    missing = None
    with _native_stderr_hidden() if quiet else contextlib.nullcontext():
        try:
            import keras
        except ImportError as error:
            missing = _missing_backend(error)
            if missing is None:
                raise
        else:
            # Every backend reads data and tokenises with TensorFlow, whose
            # native code logs as it loads and finds its devices. On JAX and
            # PyTorch it computes nothing on an accelerator: hiding its GPUs
            # keeps it from claiming their memory.
            import tensorflow as tf

            if keras.backend.backend() != "tensorflow":
                tf.config.set_visible_devices([], "GPU")
            tf.config.list_logical_devices()
    if missing:
        print(missing, file=sys.stderr)  # stderr is back: said after the block
        return 2
    from keras_clip.cli import main as cli_main
    from keras_clip.cli.native_messages import filtered_native_stderr

    if not quiet:
        return cli_main(argv)
    tf.get_logger().addFilter(_not_retracing)
    with filtered_native_stderr():
        return cli_main(argv)


def _not_retracing(record):
    """False for TensorFlow's "triggered tf.function retracing" warning:
    the commands call `predict` on images, then texts, then both, which
    traces Keras' predict step once for each, as it should."""
    return "triggered tf.function retracing" not in record.getMessage()


if __name__ == "__main__":
    sys.exit(main())
