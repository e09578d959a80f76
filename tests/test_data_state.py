"""The pipeline's state lives in an object the user keeps, and each stage of
`image_text_dataset` can be run alone."""

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip import data
from keras_clip.data import pipeline
from keras_clip.data.report import DataReport
from keras_clip.data.state import DataState

# tf.data only: once, in the PyTorch run of the suite.
pytestmark = pytest.mark.backend("torch")

CAPTIONS = ["a red circle", "a blue square", "a green cross", "a white star"] * 4


@pytest.fixture(scope="module")
def tokenizer():
    return keras_clip.Tokenizer.from_corpus(CAPTIONS, 40, context_length=8)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (16, 20, 24, 3)).astype("uint8")


def test_a_transformed_dataset_is_refused_and_its_kept_state_still_works(tokenizer, pixels):
    train = data.image_text_dataset((pixels, CAPTIONS), tokenizer, 16, 4, seed=0)
    state = train.state
    assert isinstance(state, DataState) and train.report is state.report
    mapped = train.map(lambda batch: batch)
    assert not hasattr(mapped, "state")
    with pytest.raises(ValueError, match="carries no keras-clip DataState"):
        data.DataReportCallback(mapped)
    with pytest.raises(TypeError, match="Expected a dataset"):
        data.DataReportCallback("photos/")
    callback = data.DataReportCallback(state)
    epochs = []
    for epoch in (0, 1, 1):
        callback.on_epoch_begin(epoch)
        assert int(state.epoch.numpy()) == epoch
        epochs.append(next(iter(mapped))["token_ids"].numpy())
        callback.on_epoch_end(epoch)
    # Epoch 1 again (a resumed run): the same order, through the mapped dataset.
    np.testing.assert_array_equal(epochs[1], epochs[2])
    assert not np.array_equal(epochs[0], epochs[1])
    assert len(callback.history) == 3  # (partial passes: the counts are not checked)


def test_several_passes_per_epoch_take_their_own_epoch_keys():
    state = DataState(DataReport(origin="x"), several_passes_per_epoch=True)
    state.start_epoch(3)
    assert int(state.epoch.numpy()) == 3 * state.epoch_stride > 3


def test_read_source_stage_checks_what_the_source_holds(pixels):
    examples, resampled = pipeline._read_source(
        (pixels, CAPTIONS), (None, None), 4, True, False, None, None
    )
    assert len(examples) == 16 and resampled is False
    with pytest.raises(ValueError, match="fewer than batch_size=32"):
        pipeline._read_source((pixels, CAPTIONS), (None, None), 32, True, False, None, None)
    with pytest.raises(ValueError, match="needs a shard source"):
        pipeline._read_source((pixels, CAPTIONS), (None, None), 4, True, True, None, None)


def test_ordered_elements_stage_follows_the_state_epoch(pixels):
    examples, _ = pipeline._read_source(
        (pixels, CAPTIONS), (None, None), 4, True, False, None, None
    )
    state = DataState(DataReport(origin="memory"))

    def order():
        stream = pipeline._ordered_elements(examples, True, 7, state, None, False)
        return [int(element["index"]) for element, _ in stream.take(16)]

    first = order()
    assert sorted(first) == list(range(16))
    state.epoch.assign(0)
    assert order() == first
    state.epoch.assign(1)
    assert order() != first
    evaluation = pipeline._ordered_elements(examples, False, 7, state, None, False)
    assert [int(e["index"]) for e, _ in evaluation] == list(range(16))


def test_batched_stage_keeps_full_batches_for_training_and_every_pair_for_evaluation():
    images = tf.zeros([10, 4, 4, 3], tf.uint8)
    elements = tf.data.Dataset.from_tensor_slices(
        {"image": images, "caption": tf.constant(["x"] * 10)}
    )
    sizes = [len(b["caption"]) for b in pipeline._batched(elements, True, 4, None)]
    assert sizes == [4, 4]
    epoch = pipeline._batched(elements, True, 4, 20)
    assert int(epoch.cardinality()) == 5
    pairs = tf.data.Dataset.from_tensor_slices(
        {"image": images[:3], "captions": tf.ragged.constant([["a", "b"], ["c"], ["d", "e"]])}
    ).map(lambda e: {**e, "index": tf.constant(0, tf.int64)})
    captions = [c for b in pipeline._batched(pairs, False, 4, None) for c in b["caption"].numpy()]
    assert captions == [b"a", b"b", b"c", b"d", b"e"]


def test_finish_stage_normalises_with_the_given_preprocessing(tokenizer):
    preprocessing = keras_clip.ImagePreprocessing(2, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    batch = {
        "image": tf.fill([1, 2, 2, 3], tf.constant(255, tf.uint8)),
        "caption": tf.constant(["a red circle"]),
    }
    report = DataReport(origin="memory")
    out = pipeline._finish_batch(batch, tokenizer, preprocessing, report, False)
    np.testing.assert_allclose(out["images"].numpy()[0, 0, 0], [2.0, 1.0, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(out["token_ids"].numpy(), tokenizer(["a red circle"]))
