"""Chunked InfoNCE and SigLIP: the plain losses and their exact gradients, in
row blocks."""

import numpy as np
import pytest
from keras import ops

from keras_clip.objectives import chunked as chunked_loss
from keras_clip.objectives import functional as losses
from tests.helpers import gradients


def _embeddings(rows, columns=None, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(columns or rows, dim)).astype("float32")
    texts = images + 0.8 * rng.normal(size=images.shape).astype("float32")
    normalize = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return normalize(images), normalize(texts)


def _assert_same_loss_and_gradients(chunked, plain, *inputs):
    np.testing.assert_allclose(float(chunked(*inputs)), float(plain(*inputs)), rtol=1e-5, atol=1e-6)
    for got, want in zip(gradients(chunked, *inputs), gradients(plain, *inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [7, 16, 64])
def test_chunked_clip_loss_and_gradient_equal_the_plain_ones(chunk_size):
    images, texts = _embeddings(40)
    scale = np.array(14.3, "float32")

    def plain(i, t, s):
        return losses.clip_loss(i, t, s, normalize=False)

    def chunked(i, t, s):
        return chunked_loss.chunked_infonce(i, t, i, t, s, 0, chunk_size)

    _assert_same_loss_and_gradients(chunked, plain, images, texts, scale)


def test_chunked_rows_against_the_global_batch_with_an_offset():
    images, texts = _embeddings(32)
    scale = np.array(20.0, "float32")
    rows = slice(8, 16)

    def plain(i, t, s):
        return losses.infonce_from_row_logits(
            losses.similarity_logits(i[rows], t, s, normalize=False, paired=False),
            losses.similarity_logits(t[rows], i, s, normalize=False, paired=False),
            8,
        )

    def chunked(i, t, s):
        return chunked_loss.chunked_infonce(i[rows], t[rows], i, t, s, 8, 3)

    _assert_same_loss_and_gradients(chunked, plain, images, texts, scale)


@pytest.mark.parametrize(
    "chunk_size, rows", [(7, slice(0, 40)), (16, slice(0, 40)), (3, slice(8, 16))]
)
def test_chunked_sigmoid_loss_and_gradient_equal_the_plain_ones(chunk_size, rows):
    """SigLIP's loss (scale and bias trained too), whole or for a replica's
    rows against the global batch, in blocks that do not divide the rows."""
    images, texts = _embeddings(40)
    scale, bias = np.array(10.5, "float32"), np.array(-6.0, "float32")
    offset = rows.start

    def plain(i, t, s, b):
        logits = losses.similarity_logits(i[rows], t, s, normalize=False, paired=False)
        return losses.siglip_from_logits(ops.add(logits, b), offset)

    def chunked(i, t, s, b):
        return chunked_loss.chunked_sigmoid_loss(i[rows], t, s, b, offset, chunk_size)

    _assert_same_loss_and_gradients(chunked, plain, images, texts, scale, bias)


@pytest.mark.parametrize("loss_class", ["InfoNCELoss", "SigLIPLoss"])
def test_a_loss_layer_with_chunks_trains_like_the_plain_layer(loss_class):
    import keras

    import keras_clip
    from tests.helpers import tiny_batch

    batch = tiny_batch(batch=24)
    layer_class = getattr(keras_clip.objectives, loss_class)
    results = []
    for chunk_size in (None, 10):
        keras.utils.set_random_seed(0)
        layer = layer_class(chunk_size=chunk_size)
        model = keras_clip.CLIP.from_architecture("tiny-vit", objective=layer)
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        history = model.fit(batch, batch_size=24, epochs=2, verbose=0)
        results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert layer_class.from_config(layer.get_config()).chunk_size == 10


def test_chunks_need_plain_labels():
    import keras_clip

    with pytest.raises(ValueError, match="label_smoothing=0"):
        keras_clip.objectives.InfoNCELoss(chunk_size=8, label_smoothing=0.1)
