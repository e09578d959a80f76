"""`image_text_dataset`: image-caption sources -> batches ready for `fit`."""

import dataclasses
import random

import tensorflow as tf

from keras_clip.data import images as image_ops
from keras_clip.data.decoding import decoded_elements
from keras_clip.data.decoding import indexed_elements
from keras_clip.data.ordering import element_seeds
from keras_clip.data.report import DataReport
from keras_clip.data.sources import SHARD_KINDS
from keras_clip.data.sources import read_source
from keras_clip.data.state import DataState
from keras_clip.keras_workarounds import full_batches_only
from keras_clip.models.preprocessing import as_image_preprocessing
from keras_clip.utils import require
from keras_clip.utils.checks import check_positive_ints

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_RECORD_SHUFFLE_BUFFER = 2048


def image_text_dataset(
    source,
    tokenizer,
    preprocessing,
    batch_size,
    training=True,
    *,
    seed=None,
    shuffle_buffer=None,
    crop_scale=(0.9, 1.0),
    crop_ratio=(3 / 4, 4 / 3),
    horizontal_flip=False,
    image_column=None,
    caption_column=None,
    with_image_index=False,
    num_samples=None,
    resampled=False,
    source_weights=None,
    input_context=None,
):
    """A `tf.data.Dataset` of `{"images", "token_ids"}` batches for CLIP.

    The stages, top to bottom: read the source (`_read_source`), order
    its elements (`_ordered_elements`), decode, screen and augment each
    image (`decoding.decoded_elements`), batch (`_batched`), then tokenise
    and normalise each batch (`_finish_batch`). Training datasets shuffle,
    pick one of an image's captions at random each epoch, take a random
    resized crop (optionally flipped, with "left" and "right" swapped in the
    caption) and drop the last partial batch, since contrastive losses need
    full batches. Evaluation datasets fit each image to the square as the
    model's preprocessing says and keep every image-caption pair in order,
    the last batch possibly smaller. Unusable examples are skipped and
    counted in `dataset.state.report` (a `DataReport`; also
    `dataset.report`); pass the dataset, or its `state`, to
    `DataReportCallback` to log them once per epoch.

    Args:
        source: in-memory `(images, captions)`, a folder with captions.csv
            or captions.jsonl, such a file, img2dataset's `files` folder,
            TFRecord or webdataset tar shards (a folder, a glob pattern,
            brace notation or a list); see `keras_clip.data.sources`.
        tokenizer: a `keras_clip.Tokenizer` (any object with a TF
            `tokenize(strings) -> int32 (batch, context_length)`).
        preprocessing: the model (its own image settings, a checkpoint's
            after `from_pretrained`), its `ImagePreprocessing`, or an int
            (OpenAI's CLIP settings at that size, for a model trained from
            scratch): the square side, resizing, interpolation and
            normalisation, taken whole.
        batch_size: int.
        training: bool, training (random, shuffled) or evaluation (ordered).
        seed: int or None. The same seed gives the same batches.
        shuffle_buffer: int, the record shuffle buffer for shards
            (default 2048; shards are also read in a shuffled order).
            In-memory and folder sources are fully shuffled every epoch.
        crop_scale: (min, max) area fraction of the random resized crop,
            or None: no crop, training images are fitted to the square as
            evaluation images are (for captions that a crop would falsify,
            such as ones naming a size or a place in the picture).
        crop_ratio: (min, max) aspect ratio of the random resized crop.
        horizontal_flip: bool, flip half the training images.
        image_column, caption_column: column (CSV) or key (JSONL) names;
            default the first of the usual names present. For webdataset
            shards: the image extensions ("jpg;png", default
            "jpg;jpeg;png;webp") and the caption member ("txt", default, or
            "json:FIELD"); see `tar_shards.member_options`.
        with_image_index: bool (evaluation only): add "image_index", int64
            (B,), each pair's image position in the source, so that pairs
            of one image can be grouped (e.g. `caption_to_image` for
            `evaluate_retrieval`).
        num_samples: int (training only): an epoch is this many samples
            (`num_samples // batch_size` full batches) instead of one pass
            over the source, as open_clip's `--train-num-samples`. Passes
            repeat as needed; each epoch starts a new pass, in a new order.
        resampled: bool (training on shards only): each pass draws its
            shards with replacement (open_clip's `--dataset-resampled`);
            use with `num_samples`.
        source_weights: (training on shards, with `resampled`) one
            weight per part of the source (each "::" piece or list entry):
            each of a part's shards is drawn in proportion to its part's
            weight, as open_clip's `--train-data-upsampling-factors`
            (default: every shard alike).
        input_context: for multi-worker or multi-host training on shards:
            a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`) or a tuple
            `(index, count)` (e.g. `(jax.process_index(),
            jax.process_count())`). This reader then takes every count-th
            shard starting at index, so that workers read disjoint shards;
            it needs at least `count` shards. Default: on the JAX backend
            with several processes (multi-host), training on shards reads
            `(jax.process_index(), jax.process_count())`'s share; else all.

    Returns:
        `tf.data.Dataset` of dicts: "images" float32 (B, image_size,
        image_size, 3) (for a NaFlex model, a dict of "patches" float32
        (B, max_num_patches, patch_size**2 * 3) and "spatial_shapes" int32
        (B, 2): one shape per patch budget, see `keras_clip.data.naflex`),
        "token_ids" int32 (B, context_length), with the
        attribute `state` (a `keras_clip.data.state.DataState`: the report
        and the epoch the pass order derives from, which
        `DataReportCallback` sets so that a resumed run repeats the
        interrupted epoch's order exactly) and `report` (`state.report`).
        tf.data methods (`.map`, `.take`, ...) return datasets without
        them: keep `state = dataset.state` to pass on.

    Example:

    ```python
    captions = keras_clip.data.read_source("photos/").all_captions()
    tokenizer = keras_clip.Tokenizer.from_corpus(captions, 8000, context_length=16)
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", image_size=224, patch_size=32,
        vocabulary_size=tokenizer.vocabulary_size, context_length=16,
    )
    model.compile()
    train = image_text_dataset("photos/", tokenizer, model, 64, seed=0)
    model.fit(train, epochs=5, callbacks=[keras_clip.data.DataReportCallback(train)])
    ```
    """
    preprocessing = as_image_preprocessing(preprocessing)
    _check_arguments(
        tokenizer, batch_size, training, with_image_index, num_samples, crop_scale, crop_ratio
    )
    examples, resampled = _read_source(
        source, (image_column, caption_column), batch_size, training, resampled,
        source_weights, input_context,
    )  # fmt: skip
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    state = DataState(DataReport(examples.skipped, examples.origin), num_samples is not None)
    elements = _ordered_elements(examples, training, seed, state, shuffle_buffer, resampled)
    settings = dict(
        preprocessing=preprocessing,
        training=training,
        crop_scale=crop_scale,
        crop_ratio=crop_ratio,
        horizontal_flip=horizontal_flip,
    )
    elements = decoded_elements(elements, state.report, examples.kind, settings)
    batches = _batched(elements, training, batch_size, num_samples)
    batches = batches.map(
        lambda batch: _finish_batch(
            batch, tokenizer, preprocessing, state.report, with_image_index
        ),
        num_parallel_calls=AUTOTUNE,
    ).prefetch(AUTOTUNE)
    batches.state = state
    batches.report = state.report
    return batches


# === Stages ===
def _check_arguments(
    tokenizer, batch_size, training, with_image_index, num_samples, crop_scale, crop_ratio
):
    check_positive_ints(batch_size=batch_size)
    if with_image_index and training:
        raise ValueError("with_image_index is for evaluation datasets (training=False).")
    if num_samples is not None:
        check_positive_ints(num_samples=num_samples)
        if not training or num_samples < batch_size:
            raise ValueError(
                f"num_samples={num_samples} needs training=True and at least one batch "
                f"(batch_size={batch_size})."
            )
    if crop_scale is not None:
        _check_range("crop_scale", crop_scale, 0.0, 1.0)
    _check_range("crop_ratio", crop_ratio, 0.0, None)
    if not hasattr(tokenizer, "tokenize"):
        raise TypeError(
            "tokenizer must be a keras_clip.Tokenizer (it needs a "
            f"TensorFlow tokenize method); got {type(tokenizer).__name__}."
        )
    if getattr(tokenizer, "python_clean", False):
        require(("ftfy",), "The tokenizer's python_clean=True (OpenAI's text clean-up)")


def _read_source(source, columns, batch_size, training, resampled, source_weights, input_context):
    """The source's examples (this worker's shards), and how shards are drawn."""
    examples = read_source(source, *columns)
    shards = examples.kind in SHARD_KINDS
    if training and not shards and len(examples) < batch_size:
        raise ValueError(
            f"{examples.origin} has {len(examples)} usable images, fewer "
            f"than batch_size={batch_size}: a training dataset drops "
            "partial batches, so it would be empty."
        )
    if resampled and not (training and shards):
        raise ValueError("resampled=True draws shards: it needs a shard source and training.")
    if source_weights is not None:
        resampled = _shard_weights(examples, source_weights, resampled)
    if input_context is None and training and shards:
        input_context = _jax_host()
    if input_context is not None:
        examples, resampled = _worker_shards(examples, input_context, resampled)
    return examples, resampled


def _ordered_elements(examples, training, seed, state, shuffle_buffer, resampled):
    """(element, augmentation seeds) pairs in the pass's order. Each new
    pass advances `state.epoch`, which `DataReportCallback` also sets at
    each epoch's start, so a run resumed at epoch k sees epoch k's data."""
    if examples.kind in SHARD_KINDS:
        elements = examples.read_shards(training, seed, state.epoch, state.report, resampled)
        if training:
            buffer = shuffle_buffer or DEFAULT_RECORD_SHUFFLE_BUFFER
            elements = elements.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
    else:
        elements = indexed_elements(examples, seed, state.epoch if training else None)
    if not training:
        return elements.map(lambda element: (element, tf.zeros([3], tf.int64)))
    return elements.enumerate().map(
        lambda position, element: (element, element_seeds(seed, element["epoch"], position))
    )


def _batched(elements, training, batch_size, num_samples):
    """Training: one caption per image, full batches only (an epoch of
    `num_samples // batch_size` batches when given); evaluation: every
    image-caption pair, in order."""
    if not training:
        return elements.flat_map(_pairs).batch(batch_size)
    elements = elements.map(lambda e: {"image": e["image"], "caption": e["caption"]})
    # Skipped examples make the cardinality unknown (see the workaround).
    batches = full_batches_only(elements, batch_size, "caption")
    if num_samples is None:
        return batches
    steps = num_samples // batch_size
    batches = batches.repeat().take(steps)
    return batches.apply(tf.data.experimental.assert_cardinality(steps))


def _finish_batch(batch, tokenizer, preprocessing, report, with_image_index):
    """Tokenised captions (truncations counted) and normalised images."""
    if getattr(tokenizer, "python_clean", False):
        from keras_clip.tokenizers.cleaning import clean_bytes

        cleaned = tf.numpy_function(clean_bytes, [batch["caption"]], tf.string)
        batch = dict(batch, caption=tf.reshape(cleaned, tf.shape(batch["caption"])))
    if hasattr(tokenizer, "tokenize_and_count"):
        token_ids, truncated = tokenizer.tokenize_and_count(batch["caption"])
        with tf.control_dependencies([report.record_truncated_captions(truncated)]):
            token_ids = tf.identity(token_ids)
    else:
        token_ids = tokenizer.tokenize(batch["caption"])
    outputs = {"images": image_ops.normalize(batch["image"], preprocessing), "token_ids": token_ids}
    if with_image_index:
        outputs["image_index"] = batch["index"]
    return outputs


# === Helpers ===
def _shard_weights(examples, source_weights, resampled):
    """Each shard's weight: its part's entry of `source_weights`."""
    weights = [float(w) for w in source_weights]
    if not resampled or len(weights) != len(examples.part_sizes or ()):
        raise ValueError(
            f"source_weights={source_weights!r} needs resampled=True and one weight per part "
            f"of the source ({len(examples.part_sizes or ())} in {examples.origin!r})."
        )
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"source_weights must be >= 0, not all 0; got {source_weights!r}.")
    return [w for w, size in zip(weights, examples.part_sizes) for _ in range(size)]


def _jax_host():
    """(process index, count) on multi-host JAX, else None."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    count = jax.process_count()
    return (jax.process_index(), count) if count > 1 else None


def _worker_shards(examples, input_context, resampled):
    """This worker's shards: every count-th, starting at its index (and
    their weights, when `resampled` lists one per shard)."""
    if isinstance(input_context, tuple):
        index, count = input_context
    else:
        index, count = input_context.input_pipeline_id, input_context.num_input_pipelines
    if examples.kind not in SHARD_KINDS:
        raise ValueError(
            "input_context splits shards between workers: it needs a shard source, "
            f"not {examples.origin!r} ({examples.kind})."
        )
    if not 0 <= index < count or len(examples.images) < count:
        raise ValueError(
            f"input_context: worker {index} of {count} needs 0 <= index < count and at "
            f"least {count} shards; {examples.origin!r} has {len(examples.images)}."
        )
    if not isinstance(resampled, bool):
        resampled = resampled[index::count]
    mine = dataclasses.replace(
        examples,
        images=examples.images[index::count],
        origin=f"{examples.origin} (worker {index} of {count})",
        part_sizes=None,
        _record_count=None,
    )
    return mine, resampled


def _check_range(name, value, low, high):
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and low < value[0] <= value[1]
        and (high is None or value[1] <= high)
    )
    if not ok:
        bound = f"<= {high}" if high is not None else ""
        raise ValueError(
            f"{name} must be (min, max) with {low} < min <= max {bound}; got {value!r}."
        )


def _pairs(element):
    """Evaluation: one (image, caption) pair per caption, in order."""
    count = tf.size(element["captions"])
    images = tf.nest.map_structure(  # (a NaFlex image is a dict of tensors)
        lambda part: tf.repeat(part[None], count, axis=0), element["image"]
    )
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": images,
            "caption": element["captions"],
            "index": tf.fill([count], element["index"]),
        }
    )
