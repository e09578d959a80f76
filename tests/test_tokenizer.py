"""The tensorflow-text WordPiece tokenizer."""

import numpy as np
import pytest
import tensorflow as tf

from keras_clip import Tokenizer

# The tokenizer is tensorflow-text graph code, the same whatever the Keras
# backend: it is tested once, in the TensorFlow run of the suite.
pytestmark = pytest.mark.backend("tensorflow")

CORPUS = [
    "a small red circle on the left",
    "a large blue square at the top",
    "there is a green triangle in the middle",
    "a purple cross, small",
] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_corpus(CORPUS, vocabulary_size=80, context_length=16)


def test_ids_have_start_end_and_padding(tokenizer):
    ids = tokenizer(["a red circle", "a small red circle on the left " * 4])
    assert ids.dtype == np.int32 and ids.shape == (2, 16)
    assert ids[0, 0] == tokenizer.start_id
    end = list(ids[0]).index(tokenizer.end_id)
    assert (ids[0, end + 1 :] == tokenizer.pad_id).all()
    assert tokenizer.detokenize(ids[:1]) == ["a red circle"]
    # Truncation keeps the end token in the last position.
    assert ids[1, -1] == tokenizer.end_id and tokenizer.pad_id not in ids[1]
    assert tokenizer.end_id == tokenizer.vocabulary_size - 1  # the largest id
    assert tokenizer.vocabulary_size <= 80


def test_unknown_words_and_case(tokenizer):
    ids = tokenizer(["A RED Circle", "a red circle", "a zebra", "Crème"])
    np.testing.assert_array_equal(ids[0], ids[1])
    # "z" is in no caption, so "zebra" cannot be spelt in WordPieces: one [UNK].
    assert "z" not in "".join(CORPUS)
    unknown = [
        tokenizer.start_id,
        tokenizer.vocabulary.index("a"),
        tokenizer.unknown_id,
        tokenizer.end_id,
    ]
    np.testing.assert_array_equal(ids[2, :4], unknown)
    assert (ids[2, 4:] == tokenizer.pad_id).all()
    assert tokenizer.detokenize(ids[2:3]) == ["a [UNK]"]
    # Accents are stripped (NFD), so "Crème" gives the ids of "creme".
    np.testing.assert_array_equal(ids[3], tokenizer(["creme"])[0])


def test_runs_inside_tf_data_and_tf_function(tokenizer):
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS[:4]).batch(2).map(tokenizer)
    batches = [b.numpy() for b in dataset]
    np.testing.assert_array_equal(np.concatenate(batches), tokenizer(CORPUS[:4]))
    graph = tf.function(tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(graph(tf.constant(CORPUS[:2])).numpy(), tokenizer(CORPUS[:2]))


def test_save_and_load_give_the_same_ids(tokenizer, tmp_path):
    tokenizer.save(str(tmp_path / "tok"))
    loaded = Tokenizer.load(str(tmp_path / "tok"))
    np.testing.assert_array_equal(loaded(CORPUS), tokenizer(CORPUS))
    with pytest.raises(FileNotFoundError, match="not a saved Tokenizer"):
        Tokenizer.load(str(tmp_path))


def test_empty_captions_are_start_and_end(tokenizer):
    # As open_clip's tokenizer: an empty caption is [START, END] (the data
    # pipeline skips such captions as bad examples, and counts them).
    ids = tokenizer(["a red circle", "   "])
    assert list(ids[1, :3]) == [tokenizer.start_id, tokenizer.end_id, 0]
    ids = tokenizer.tokenize(tf.constant([""])).numpy()[0]
    assert list(ids[:3]) == [tokenizer.start_id, tokenizer.end_id, 0]
    with pytest.raises(ValueError, match="at least one non-empty"):
        Tokenizer.from_corpus(["", " "], vocabulary_size=50)


def test_undecodable_python_strings_are_tokenised_as_their_bytes(tokenizer):
    import os

    ids = tokenizer([b"a red caf\xe9", os.fsdecode(b"a red caf\xe9")])
    np.testing.assert_array_equal(ids[0], ids[1])
    assert ids[0, 0] == tokenizer.start_id and tokenizer.end_id in ids[0]
