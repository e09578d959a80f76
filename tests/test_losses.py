"""Functional objectives against hand-computed values and NumPy references."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_clip.objectives import functional as losses
from tests.helpers import finite_differences
from tests.helpers import gradients
from tests.helpers import to_numpy


def np_normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_log_softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def np_softplus(x):
    return np.logaddexp(0.0, x)


def np_clip_loss(image, text, scale, normalize=True, smoothing=0.0):
    if normalize:
        image, text = np_normalize(image), np_normalize(text)
    logits = scale * image @ text.T
    n = len(logits)
    target = (1 - smoothing) * np.eye(n) + smoothing / n
    row = -np.mean(np.sum(target * np_log_softmax(logits, 1), axis=1))
    col = -np.mean(np.sum(target * np_log_softmax(logits.T, 1), axis=1))
    return (row + col) / 2


def np_jsd_loss(positive, negative):
    return np.mean(np_softplus(-positive)) + np.mean(np_softplus(negative))


def np_siglip_loss(image, text, scale, bias, normalize=True):
    if normalize:
        image, text = np_normalize(image), np_normalize(text)
    logits = scale * image @ text.T + bias
    labels = 2 * np.eye(len(logits)) - 1
    return np.sum(np_softplus(-labels * logits)) / len(logits)


def test_worked_example_three_pairs():
    # I = identity(3), T below, temperature 0.07, no normalisation. The
    # seed's 0.00016 for image-to-text is a slip (ln 0.9992 ~ -0.0008).
    image = np.eye(3, dtype="float32")
    text = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]], "float32")
    logits = losses.similarity_logits(image, text, 1 / 0.07, normalize=False)
    image_to_text, text_to_image = losses.contrastive_cross_entropies(logits)
    assert to_numpy(image_to_text) == pytest.approx(3.613e-4, rel=1e-3)
    assert to_numpy(text_to_image) == pytest.approx(1.1475e-3, rel=1e-3)
    symmetric = losses.clip_loss(image, text, 1 / 0.07, normalize=False)
    assert to_numpy(symmetric) == pytest.approx(7.544e-4, rel=1e-3)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_clip_loss_matches_numpy(normalize, smoothing):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(6, 5)).astype("float32")
    text = rng.normal(size=(6, 5)).astype("float32")
    expected = np_clip_loss(
        image.astype("float64"), text.astype("float64"), 3.0, normalize, smoothing
    )
    actual = losses.clip_loss(image, text, 3.0, normalize, label_smoothing=smoothing)
    assert to_numpy(actual).dtype == np.float32
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=1e-5, atol=1e-6)


def test_jsd_loss_matches_numpy():
    rng = np.random.default_rng(2)
    positive = rng.normal(size=7).astype("float32") * 3
    negative = rng.normal(size=7).astype("float32") * 3
    expected = np_jsd_loss(positive.astype("float64"), negative.astype("float64"))
    np.testing.assert_allclose(to_numpy(losses.jsd_loss(positive, negative)), expected, rtol=1e-5)


@pytest.mark.parametrize("normalize", [True, False])
def test_siglip_loss_matches_numpy(normalize):
    rng = np.random.default_rng(3)
    image = rng.normal(size=(5, 4)).astype("float32")
    text = rng.normal(size=(5, 4)).astype("float32")
    expected = np_siglip_loss(
        image.astype("float64"), text.astype("float64"), 10.0, -10.0, normalize
    )
    actual = losses.siglip_loss(image, text, 10.0, -10.0, normalize)
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=1e-5)


def test_clip_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    image = rng.normal(size=(4, 3))
    text = rng.normal(size=(4, 3))
    analytic = gradients(lambda i, t: losses.clip_loss(i, t, 2.5), image, text)
    numeric = finite_differences(lambda i, t: np_clip_loss(i, t, 2.5), image, text)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-3, atol=2e-5)


def test_jsd_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    positive, negative = rng.normal(size=5), rng.normal(size=5)
    analytic = gradients(losses.jsd_loss, positive, negative)
    numeric = finite_differences(np_jsd_loss, positive, negative)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-3, atol=2e-5)


def test_siglip_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(6)
    image = rng.normal(size=(4, 3))
    text = rng.normal(size=(4, 3))
    analytic = gradients(lambda i, t: losses.siglip_loss(i, t, 5.0, -2.0), image, text)
    numeric = finite_differences(lambda i, t: np_siglip_loss(i, t, 5.0, -2.0), image, text)
    for a, n in zip(analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=1e-3, atol=2e-5)


def test_losses_stay_finite_at_huge_logits():
    image = np.eye(4, dtype="float32")
    text = np.roll(np.eye(4, dtype="float32"), 1, axis=0)  # all pairs wrong
    clip = to_numpy(losses.clip_loss(image, text, 1e6))
    siglip = to_numpy(losses.siglip_loss(image, text, 1e6, 0.0))
    jsd = to_numpy(losses.jsd_loss(np.array([-1e6], "float32"), np.array([1e6], "float32")))
    assert np.isfinite([clip, siglip, jsd]).all()
    np.testing.assert_allclose(clip, 1e6, rtol=1e-6)
    np.testing.assert_allclose(jsd, 2e6, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_losses_compute_in_float32(dtype):
    rng = np.random.default_rng(7)
    image = ops.cast(rng.normal(size=(4, 8)), dtype)
    text = ops.cast(rng.normal(size=(4, 8)), dtype)
    for value in (
        losses.clip_loss(image, text, 100.0),
        losses.siglip_loss(image, text, 10.0, -10.0),
        losses.jsd_loss(image[:, 0], text[:, 0]),
    ):
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_mismatched_batch_sizes_raise():
    with pytest.raises(ValueError, match="different batch sizes"):
        losses.clip_loss(np.zeros((3, 4)), np.zeros((2, 4)), 1.0)
    with pytest.raises(ValueError, match="rank 2"):
        losses.clip_loss(np.zeros((3, 4, 1)), np.zeros((3, 4)), 1.0)


def test_jsd_row_slices_average_to_the_full_matrix():
    from keras_clip.objectives import functional as losses

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 8)).astype("float32") * 3
    full = float(losses.jsd_from_logits(logits))
    slices = [float(losses.jsd_from_row_logits(logits[i : i + 2], i)) for i in range(0, 8, 2)]
    np.testing.assert_allclose(np.mean(slices), full, rtol=1e-6)
    # By hand: positives on the diagonal, negatives one column to the right.
    positives = np.diag(logits)
    negatives = logits[np.arange(8), (np.arange(8) + 1) % 8]
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    np.testing.assert_allclose(
        full, softplus(-positives).mean() + softplus(negatives).mean(), rtol=1e-5
    )
