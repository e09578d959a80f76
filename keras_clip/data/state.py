"""A training dataset's state, kept in an object the user holds, and the
callback that drives it.

A dataset from `image_text_dataset` is batches plus state: the `DataReport`
of what it skipped and the epoch its order and augmentations derive from.
TensorFlow gives a `tf.data.Dataset` no place for that state: an attribute
set on it is gone from the dataset that `.map`, `.prefetch` or `.take`
returns. So the state is an object of its own, `DataState`, that
`image_text_dataset` hangs on the dataset it returns (`dataset.state`) and
that the user can keep beside any transformed dataset. `DataReportCallback`
takes the state (or the untransformed dataset) and refuses, loudly, a
dataset that has lost it: a silent skip would leave the report unlogged
and a resumed run on a different order.

Example:

```python
train = keras_clip.data.image_text_dataset("photos/", tokenizer, model, 64, seed=0)
state = train.state
train = train.map(lambda batch: batch)  # any transformation: `train.state` is gone
model.fit(train, epochs=3, callbacks=[DataReportCallback(state)])  # `state` is kept
```
"""

import logging

import keras
import tensorflow as tf

from keras_clip.data.report import DataReport

logger = logging.getLogger("keras_clip.data")

# With num_samples an epoch may take several passes over the source; epoch
# e's passes draw their orders as e * stride, e * stride + 1, ..., which
# must not reuse the next epoch's orders.
PASSES_PER_EPOCH_STRIDE = 1 << 20


class DataState:
    """What a dataset carries besides its batches.

    Args:
        report: the `DataReport` of what the dataset skipped.
        several_passes_per_epoch: bool, whether an epoch may read the
            source more than once (`num_samples`).

    Attributes:
        report: the `DataReport`.
        epoch: int64 `tf.Variable`, the pass each new pass over the source
            draws its order and augmentations from.
        epoch_stride: passes reserved per epoch.
    """

    def __init__(self, report, several_passes_per_epoch=False):
        self.report = report
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        self.epoch_stride = PASSES_PER_EPOCH_STRIDE if several_passes_per_epoch else 1

    def start_epoch(self, epoch):
        """Before epoch `epoch` (from 0): its order, and empty counts."""
        self.report.reset()
        self.epoch.assign(epoch * self.epoch_stride)


def data_state(dataset):
    """The `DataState` of a state, a dataset that carries one, or a
    `DataReport` (a state without an epoch); raises ValueError for a
    dataset that lost its state."""
    if isinstance(dataset, (DataState, DataReport)):
        return dataset
    state = getattr(dataset, "state", None)
    if isinstance(state, DataState):
        return state
    if isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "This dataset carries no keras-clip DataState: .map, .prefetch, .take and "
            "the other tf.data methods return a new dataset without it. Keep "
            "`state = dataset.state` from image_text_dataset's dataset and pass the "
            "state instead (DataReportCallback(state))."
        )
    raise TypeError(
        "Expected a dataset from keras_clip.data.image_text_dataset, its .state "
        f"or a DataReport; got {type(dataset).__name__}."
    )


class DataReportCallback(keras.callbacks.Callback):
    """Logs what the datasets skipped, once per epoch; keeps their epoch.

    At each epoch's start it also tells the datasets which epoch it is, so
    that their shuffling and augmentation follow the epoch number: a run
    resumed at epoch k (by `checkpoints.fit_resumable` or Keras'
    `BackupAndRestore`) sees the same data as an uninterrupted run.

    Each epoch's counts are kept in `history` (a list of dicts, one per
    epoch, keyed by reason; with several datasets, by origin first). After
    `fit`, each report's `counts()` still holds its last epoch's counts
    (the ones the last line logged) until this callback starts another
    epoch.

    Args:
        *datasets: datasets from `image_text_dataset`, their `.state`s (to
            keep after transforming the dataset), or `DataReport`s.
        log: callable taking one line; default a `logging` warning when
            anything was skipped.

    Example:

    ```python
    train = keras_clip.data.image_text_dataset("photos/", tokenizer, model, 64)
    model.fit(train, epochs=3, callbacks=[DataReportCallback(train)])
    ```
    """

    def __init__(self, *datasets, log=None):
        super().__init__()
        if not datasets:
            raise ValueError("DataReportCallback needs at least one dataset.")
        states = [data_state(d) for d in datasets]
        self.states = [s for s in states if isinstance(s, DataState)]
        self.reports = [s.report if isinstance(s, DataState) else s for s in states]
        # Reports given alone (no epoch to set): `start_epoch` resets the others.
        self.bare_reports = [s for s in states if isinstance(s, DataReport)]
        self.log = log
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        # Drops counts from reads before the epoch: Keras (under a
        # distribution strategy) peeks at a dataset, and prefetching then
        # reads ahead of the peek. Sets the datasets' epoch, from which their
        # order and augmentations derive (a resumed run repeats epoch k).
        for report in self.bare_reports:
            report.reset()
        for state in self.states:
            state.start_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        epoch_counts = {}
        for report in self.reports:
            counts = report.counts()
            epoch_counts[report.origin] = counts
            if any(counts.values()) or report.truncated_captions():
                line = f"Epoch {epoch + 1}: {report.summary()}"
                (self.log or logger.warning)(line)
        single = len(self.reports) == 1
        self.history.append(next(iter(epoch_counts.values())) if single else epoch_counts)
