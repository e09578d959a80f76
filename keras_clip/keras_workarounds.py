"""Workarounds for Keras 3.15 bugs, in one place.

Each one names the bug, and `tests/test_keras_workarounds.py` (plus the
multi-worker check) reproduces the bug on plain Keras: when such a test
starts failing, Keras has fixed the bug and the workaround can go.

- `DistributedBuild._maybe_symbolic_build`: under a `tf.distribute`
  strategy Keras builds a model from `strategy.reduce` of the whole nested
  batch, which `MultiWorkerMirroredStrategy` rejects for a dict
  (keras-team/keras#20329, "MultiWorkerMirroredStrategy and input
  dictionaries", open).
- `DistributedBuild.train_step` / `test_step`: under
  `MultiWorkerMirroredStrategy` Keras reduces every step log with
  `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars. No
  upstream report found (keras-team/keras issues searched 2026-12-06);
  the multi-worker test in tests/test_distributed.py reproduces it.
- `full_batches_only`: with a static batch size and unknown cardinality
  (`drop_remainder=True` after a filter), Keras adds a phantom empty batch
  to each epoch's metrics (a loss of L is reported as 2L/3 over 2 batches).
- `arrays_as_untuned_dataset`: on TensorFlow, `predict` / `evaluate` on
  arrays return about 4 s late once a call has run for several seconds:
  tearing down the input iterator waits for tf.data's autotuning thread,
  whose sleep doubles as the pipeline runs (measured on 256 captions of
  ViT-B/32: 10.25 s per `predict` against 6.5 s of work, in most calls).
  In-memory arrays need no tuning, so they go in as a batched dataset
  with autotuning off.
- `without_false_out_of_data_warning`: `fit` / `evaluate` on input of
  unknown length (any dataset that filters, as `image_text_dataset` does)
  warn "Your input ran out of data; interrupting training" at the end of the
  first epoch, although running to the end is how Keras learns the length
  and nothing is wrong. Fixed upstream by keras-team/keras#23360 (warn only
  when `steps_per_epoch` was set), not yet in Keras 3.15.
- `ExplicitSignatures`: Keras' TensorFlow backend derives a default
  SavedModel signature for a subclassed model that types every input as
  float32 (keras-team/keras#19458), which breaks on token ids when a model
  holding the towers is exported; the export writes explicit signatures.

TensorFlow is imported only when the TensorFlow backend is in use.
"""

import contextlib
import warnings

import keras
from keras import ops

from keras_clip.utils.checks import call_inputs


class DistributedBuild:
    """Model mixin: builds from one replica's batch, and shapes step logs
    so that multi-worker reduction works (see the module docstring)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                data_batch = one_replica_batch(strategy, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, *args, **kwargs):
        return logs_for_multi_worker(super().train_step(*args, **kwargs))

    def test_step(self, *args, **kwargs):
        return logs_for_multi_worker(super().test_step(*args, **kwargs))


def one_replica_batch(strategy, batch):
    """The first local replica's part of a distributed batch (other values
    pass through): it has the shapes a build needs."""
    import tensorflow as tf

    def first(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(first, batch)


def _in_multi_worker_mode():
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def logs_for_multi_worker(logs):
    """Step logs shaped (1,) under multi-worker training (each then reduces
    to the scalar mean over replicas); elsewhere `logs` unchanged."""
    if not _in_multi_worker_mode():
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def full_batches_only(dataset, batch_size, key):
    """`dataset` batched to `batch_size`, partial batches filtered out.

    A filter rather than `drop_remainder=True`, which gives a static batch
    size and so meets the phantom-batch bug when the cardinality is unknown.

    Args:
        dataset: a `tf.data.Dataset` of dicts.
        batch_size: int.
        key: a key of the elements, whose leading size is the batch's.
    """
    import tensorflow as tf

    dataset = dataset.batch(batch_size)
    return dataset.filter(lambda batch: tf.shape(batch[key])[0] == batch_size)


def arrays_as_untuned_dataset(args, kwargs):
    """`(args, kwargs)` of `predict` / `evaluate` with a dict of NumPy arrays
    as `x` replaced by the same batches as a tf.data pipeline without
    autotuning (see the module docstring); anything else unchanged.

    Only on TensorFlow, outside tf.distribute strategies, and only where
    `x` is the one positional argument. Floating arrays are cast to Keras'
    float type, as Keras' array adapter does.
    """
    x = call_inputs(args, kwargs)
    plain = len(args) <= 1 and isinstance(x, dict) and x
    if not plain or keras.backend.backend() != "tensorflow":
        return args, kwargs
    import numpy as np
    import tensorflow as tf

    if not all(isinstance(v, np.ndarray) for v in x.values()) or tf.distribute.has_strategy():
        return args, kwargs
    floatx = keras.config.floatx()
    x = {k: v.astype(floatx) if v.dtype.kind == "f" else v for k, v in x.items()}
    kwargs = {k: v for k, v in kwargs.items() if k != "x"}
    batch_size = kwargs.pop("batch_size", None) or 32
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).with_options(options)
    return (dataset,), kwargs


@contextlib.contextmanager
def without_false_out_of_data_warning(kwargs):
    """Hides Keras' "ran out of data" warning inside, unless the call set
    `steps_per_epoch` or `steps` (then running out is a real problem, and
    the warning says so); see the module docstring."""
    with warnings.catch_warnings():
        if kwargs.get("steps_per_epoch") is None and kwargs.get("steps") is None:
            warnings.filterwarnings(
                "ignore", message="Your input ran out of data", category=UserWarning
            )
        yield


class ExplicitSignatures:
    """Mixin for models with integer inputs: no derived SavedModel signature
    (see the module docstring; `keras_clip.export` writes its own)."""

    @property
    def _default_save_signature(self):
        return None
