"""Per-epoch order and random seeds, keyed on (seed, epoch).

A pass over a training dataset draws its order and its augmentation seeds
from the seed and an epoch variable, not from how many passes this process
has made, so a run resumed at epoch k sees the data of epoch k.
"""

import tensorflow as tf


def epoch_permutation(size, seed, epoch, resampled=False):
    """A dataset of (epoch, index) pairs: one pass's order of range(size), a
    stateless shuffle keyed on (seed, epoch), where `epoch` (a variable) is
    read, then advanced, when the pass starts. With `resampled`, the pass
    draws `size` indices with replacement instead (open_clip's
    `--dataset-resampled` for shards), keyed the same way: uniformly when
    it is True, else in proportion to `resampled`, one weight per index
    (open_clip's `--train-data-upsampling-factors`)."""
    weights = None if isinstance(resampled, bool) else [float(w) for w in resampled]

    def order(_):
        current = epoch.assign_add(1) - 1
        key = tf.stack([tf.constant(seed, tf.int64), current])
        if weights is not None:
            logits = tf.math.log(tf.constant([weights], tf.float32))
            indices = tf.random.stateless_categorical(logits, size, key, dtype=tf.int64)[0]
        elif resampled:
            indices = tf.random.stateless_uniform(
                [size], key, minval=0, maxval=size, dtype=tf.int64
            )
        else:
            indices = tf.random.experimental.stateless_shuffle(
                tf.range(size, dtype=tf.int64), seed=key
            )
        return tf.data.Dataset.from_tensor_slices((tf.fill([size], current), indices))

    return tf.data.Dataset.from_tensors(0).flat_map(order)


def shard_order(paths, seed, epoch, resampled=False):
    """A dataset of (epoch, path): one training pass's shards, in the
    order `epoch_permutation` draws."""
    return epoch_permutation(len(paths), seed, epoch, resampled).map(
        lambda pass_epoch, i: (pass_epoch, tf.gather(tf.constant(list(paths)), i))
    )


def shard_elements(paths, samples, training, seed, epoch, resampled=False, parallel=4):
    """The elements of `samples(pass_epoch, path)` (a dataset of dicts)
    over one pass's shards, each numbered in "index".

    Training reads `parallel` shards at once (interleaved, deterministic),
    in `shard_order`; evaluation reads them one after another, in order.
    """
    if training:
        elements = shard_order(paths, seed, epoch, resampled).interleave(
            samples,
            cycle_length=min(len(paths), parallel),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        files = tf.data.Dataset.from_tensor_slices(list(paths))
        elements = files.flat_map(lambda path: samples(tf.constant(0, tf.int64), path))
    return elements.enumerate().map(lambda index, element: dict(element, index=index))


def element_seeds(seed, epoch, position):
    """Three stateless seeds for one element of one epoch's pass (`epoch`:
    the pass's own epoch, carried by its elements)."""
    key = tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + epoch, position])
    return tf.random.stateless_uniform([3], key, minval=0, maxval=2**31 - 1, dtype=tf.int64)
