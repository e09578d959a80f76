"""Towers: shapes, pooling rules, input checks, configs."""

import keras
import numpy as np
import pytest

from keras_clip import encoders
from tests.helpers import to_numpy


def vit():
    return encoders.VisionTransformer(32, 8, width=16, num_layers=1, num_heads=2)


def text(end_token_id=None):
    return encoders.TextTransformer(
        50, 8, width=16, num_layers=1, num_heads=2, end_token_id=end_token_id
    )


def resnet():
    return encoders.ModifiedResNet((1, 1, 1, 1), width=8, num_heads=2, image_size=64, output_dim=12)


IMAGES = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")


def test_output_shapes():
    assert tuple(vit()(IMAGES).shape) == (2, 16)
    assert tuple(text()(np.ones((2, 8), "int32")).shape) == (2, 16)
    big = np.zeros((2, 64, 64, 3), "float32")
    assert tuple(resnet()(big).shape) == (2, 12)


def test_text_pools_at_first_end_token():
    encoder = text(end_token_id=7)
    ids = np.array([[1, 5, 7, 0, 0, 0, 0, 0], [1, 4, 6, 9, 7, 7, 0, 0]], "int32")
    base = to_numpy(encoder(ids))
    after = ids.copy()
    after[0, 3:] = [3, 3, 3, 3, 3]  # tokens after the end cannot matter
    after[1, 5:] = [2, 2, 2]
    np.testing.assert_allclose(to_numpy(encoder(after)), base, rtol=1e-5, atol=1e-6)
    before = ids.copy()
    before[0, 1] = 6
    assert not np.allclose(to_numpy(encoder(before))[0], base[0])


def test_text_pools_at_largest_id_without_end_token_id():
    encoder = text()
    ids = np.array([[1, 5, 49, 0, 0, 0, 0, 0]], "int32")
    changed = ids.copy()
    changed[0, 3:] = 3
    np.testing.assert_allclose(
        to_numpy(encoder(changed)), to_numpy(encoder(ids)), rtol=1e-5, atol=1e-6
    )


def test_shorter_token_sequences_are_accepted():
    encoder = text()
    assert tuple(encoder(np.array([[1, 2, 49]], "int32")).shape) == (1, 16)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 32, 32), "float32"), "rank 4"),
        (np.zeros((2, 32, 32, 4), "float32"), "3 \\(RGB\\) channels"),
        (np.zeros((2, 16, 16, 3), "float32"), "32x32"),
        (np.zeros((2, 32, 32, 3), "uint8"), "floating point"),
    ],
)
def test_bad_images_raise(images, message):
    with pytest.raises(ValueError, match=message):
        vit()(images)


def test_bad_token_ids_raise():
    with pytest.raises(ValueError, match="more than the text encoder's context_length=8"):
        text()(np.ones((2, 9), "int32"))
    with pytest.raises(ValueError, match="must be integers"):
        text()(np.ones((2, 8), "float32"))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: encoders.VisionTransformer(0, 8, 16, 1, 2), "image_size must be a positive"),
        (
            lambda: encoders.VisionTransformer(30, 8, 16, 1, 2),
            "image_size=30 is not a multiple of patch_size=8",
        ),
        (
            lambda: encoders.VisionTransformer(32, 8, 15, 1, 2),
            "width=15 is not divisible by num_heads=2",
        ),
        (
            lambda: encoders.TextTransformer(50, -1, 16, 1, 2),
            "context_length must be a positive integer, got -1",
        ),
        (
            lambda: encoders.TextTransformer(50, 8, 16, 1, 2, end_token_id=50),
            r"end_token_id=50 is outside the vocabulary \[0, 50\)",
        ),
        (
            lambda: encoders.ModifiedResNet((1, 1, 1), 8),
            r"stage_blocks must list 4 stages, got \(1, 1, 1\)",
        ),
        (
            lambda: encoders.RobertaTextEncoder(50, 16, 1, 2, 32, 8, projection="cls"),
            "Unknown projection 'cls'",
        ),
        (
            lambda: encoders.RobertaTextEncoder(50, 16, 1, 2, 32, 8, projection=None),
            "embed_dim=8 cannot be reached",
        ),
        (
            lambda: encoders.RobertaTextEncoder(50, 16, 1, 2, 32, 8, max_positions=60),
            "max_positions=60 cannot place 77 tokens",
        ),
        (
            lambda: encoders.ModifiedResNet((1, 1, 1, 1), 8, image_size=50),
            "image_size=50 is not a multiple of 32",
        ),
    ],
)
def test_bad_sizes_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make, inputs",
    [
        (vit, IMAGES),
        (text, np.array([[1, 5, 49, 0, 0, 0, 0, 0]], "int32")),
        (resnet, np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")),
        (
            lambda: encoders.RobertaTextEncoder(50, 16, 1, 2, 32, 8, context_length=8),
            np.array([[0, 5, 49, 2, 1, 1, 1, 1]], "int32"),
        ),
        (
            lambda: encoders.T5TextEncoder(50, 16, 1, 2, 4, 32, 8, context_length=8),
            np.array([[5, 49, 7, 1, 0, 0, 0, 0]], "int32"),
        ),
    ],
)
def test_encoder_config_round_trip(make, inputs):
    encoder = make()
    expected = to_numpy(encoder(inputs))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(encoder))
    clone(inputs)
    clone.set_weights(encoder.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(inputs)), expected)
    assert clone.get_config() == encoder.get_config()
