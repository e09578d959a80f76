"""The `keras-clip` console script.

Importing `keras_clip` imports Keras and, on the TensorFlow backend,
TensorFlow, whose native code logs about CUDA and CPU features on a plain
CPU machine (one line reads "failed call to cuInit: CUDA error", which looks
like a failure and is not). So this launcher, which lives outside the
package, quiets that logging before anything imports TensorFlow: it sets
TF_CPP_MIN_LOG_LEVEL=3 unless the environment sets it, and, at that level,
hides what the native code writes to stderr while TensorFlow loads and
finds its devices. `TF_CPP_MIN_LOG_LEVEL=0 keras-clip ...` shows it all.
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


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    with _native_stderr_hidden() if quiet else contextlib.nullcontext():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_logical_devices()  # device discovery logs too
    from keras_clip.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
