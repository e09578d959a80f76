"""Functional contrastive objectives: InfoNCE (CLIP), JSD (CLIP-Lite), SigLIP.

Every function here uses `keras.ops` only, casts its inputs to float32 (so
the objectives are computed in full precision under mixed-precision dtype
policies) and returns a float32 scalar averaged over the batch. They are
written with log-softmax and softplus so they stay finite at large logits.

Example:

```python
import numpy as np
from keras_clip.objectives import functional
image = np.random.normal(size=(4, 8)).astype("float32")
text = np.random.normal(size=(4, 8)).astype("float32")
loss = functional.clip_loss(image, text, logit_scale=1 / 0.07)
```
"""

from keras import ops


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """L2-normalises `x` along `axis` in float32 (safe for all-zero rows)."""
    x = ops.cast(x, "float32")
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, epsilon))


def _check_pair(image_embeddings, text_embeddings, paired=True):
    image_shape = tuple(image_embeddings.shape)
    text_shape = tuple(text_embeddings.shape)
    if len(image_shape) != 2 or len(text_shape) != 2:
        raise ValueError(
            "Embeddings must have rank 2 (batch, features). Received image "
            f"shape {image_shape} and text shape {text_shape}."
        )
    for axis, what in ((0, "batch size"), (1, "feature size"))[0 if paired else 1 :]:
        a, b = image_shape[axis], text_shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"Image and text embeddings have different {what}s: "
                f"image shape {image_shape}, text shape {text_shape}."
            )


def similarity_logits(image_embeddings, text_embeddings, logit_scale, normalize=True, paired=True):
    """Returns `logit_scale * image @ text.T` in float32, shape (N, M).

    `paired=True` requires N == M (row i matches column i); pass False to
    score a slice of rows against a larger set of columns.
    """
    _check_pair(image_embeddings, text_embeddings, paired)
    if normalize:
        image_embeddings = l2_normalize(image_embeddings)
        text_embeddings = l2_normalize(text_embeddings)
    image_embeddings = ops.cast(image_embeddings, "float32")
    text_embeddings = ops.cast(text_embeddings, "float32")
    logits = ops.matmul(image_embeddings, ops.transpose(text_embeddings))
    return ops.cast(logit_scale, "float32") * logits


def _target_columns(logits, offset):
    """One-hot (rows, columns) marking column offset + i in row i."""
    rows, columns = ops.shape(logits)[0], ops.shape(logits)[1]
    return ops.one_hot(ops.arange(rows) + offset, columns, dtype="float32")


def _cross_entropy_to_targets(logits, label_smoothing, offset=0):
    """Mean cross-entropy of row i of `logits` against column offset + i."""
    log_probs = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    if isinstance(offset, int) and offset == 0:
        nll = -ops.diagonal(log_probs)
    else:
        nll = -ops.sum(_target_columns(logits, offset) * log_probs, axis=1)
    if label_smoothing:
        uniform_nll = -ops.mean(log_probs, axis=1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform_nll
    return ops.mean(nll)


def contrastive_cross_entropies(logits, label_smoothing=0.0):
    """The two directions of the InfoNCE loss on a square logit matrix.

    Args:
        logits: float (N, N) matrix, `logits[i, j]` scoring image i against
            caption j; the matching pairs lie on the diagonal.
        label_smoothing: float in [0, 1). Mixes the one-hot targets with a
            uniform distribution.

    Returns:
        A tuple `(image_to_text, text_to_image)` of float32 scalars: the mean
        cross-entropy of each image row against its caption, and of each
        caption column against its image.
    """
    logits = ops.cast(logits, "float32")
    image_to_text = _cross_entropy_to_targets(logits, label_smoothing)
    text_to_image = _cross_entropy_to_targets(ops.transpose(logits), label_smoothing)
    return image_to_text, text_to_image


def infonce_from_logits(logits, label_smoothing=0.0):
    """Symmetric InfoNCE: the mean of both cross-entropy directions."""
    image_to_text, text_to_image = contrastive_cross_entropies(logits, label_smoothing)
    return (image_to_text + text_to_image) / 2.0


def infonce_from_row_logits(image_to_text, text_to_image, offset, label_smoothing=0.0):
    """Symmetric InfoNCE for a slice of rows scored against all columns.

    Args:
        image_to_text: float (n, N): n local images against all N captions.
        text_to_image: float (n, N): n local captions against all N images.
        offset: int or scalar tensor. Global index of the first local row;
            row i matches column offset + i.
        label_smoothing: float in [0, 1).

    Returns:
        The mean over the n local rows of both directions; averaged over
        the N / n slices, it equals `infonce_from_logits` on the full matrix.
    """
    image_to_text = ops.cast(image_to_text, "float32")
    text_to_image = ops.cast(text_to_image, "float32")
    return (
        _cross_entropy_to_targets(image_to_text, label_smoothing, offset)
        + _cross_entropy_to_targets(text_to_image, label_smoothing, offset)
    ) / 2.0


def clip_loss(image_embeddings, text_embeddings, logit_scale, normalize=True, label_smoothing=0.0):
    """CLIP's symmetric InfoNCE loss.

    logits = logit_scale * normalize(I) @ normalize(T).T and the loss is the
    mean of the image-to-text and text-to-image cross-entropies with the
    matching pairs on the diagonal.

    Args:
        image_embeddings: float (N, D) image embeddings.
        text_embeddings: float (N, D) text embeddings, row i matching image i.
        logit_scale: positive float scalar multiplying the cosine
            similarities (1 / temperature).
        normalize: bool. Whether to L2-normalise the embeddings first.
        label_smoothing: float in [0, 1).

    Returns:
        A float32 scalar.

    Example:

    ```python
    clip_loss(np.eye(3), np.eye(3), logit_scale=100.0)  # ~ 0
    ```
    """
    logits = similarity_logits(image_embeddings, text_embeddings, logit_scale, normalize)
    return infonce_from_logits(logits, label_smoothing)


def jsd_loss(positive_scores, negative_scores):
    """The Jensen-Shannon mutual-information objective of CLIP-Lite.

    loss = mean(softplus(-T(x, y+))) + mean(softplus(T(x, y-))), the negative
    of the f-GAN lower bound on 2 * JSD(p(x, y) || p(x) p(y)) - log 4.

    Args:
        positive_scores: float (N,) critic scores of matching pairs.
        negative_scores: float (M,) critic scores of non-matching pairs.

    Returns:
        A float32 scalar.

    Example:

    ```python
    jsd_loss(np.array([5.0, 4.0]), np.array([-6.0, -3.0]))
    ```
    """
    positive_scores = ops.cast(positive_scores, "float32")
    negative_scores = ops.cast(negative_scores, "float32")
    return ops.mean(ops.softplus(-positive_scores)) + ops.mean(ops.softplus(negative_scores))


def jsd_from_logits(logits):
    """JSD loss on a critic score matrix with one rolled negative per row.

    The positives are the diagonal `logits[i, i]`; each row's negative is
    `logits[i, i + 1]` (mod N), the next example's caption.
    """
    logits = ops.cast(logits, "float32")
    positives = ops.diagonal(logits)
    negatives = ops.diagonal(ops.roll(logits, -1, axis=1))
    return jsd_loss(positives, negatives)


def jsd_from_row_logits(logits, offset):
    """JSD loss for a slice of rows scored against the whole global batch.

    Args:
        logits: float (n, N): n local rows against all N columns.
        offset: int or scalar tensor. Global index of the first local row:
            row i's positive is column offset + i, its negative column
            offset + i + 1 (mod N), as `jsd_from_logits` on the full matrix.

    Returns:
        The loss over the n local rows; averaged over the N / n slices, it
        equals `jsd_from_logits` on the full (N, N) matrix.
    """
    logits = ops.cast(logits, "float32")
    rows, columns = ops.shape(logits)[0], ops.shape(logits)[1]
    positive_columns = ops.arange(rows) + offset
    negative_columns = ops.mod(positive_columns + 1, columns)
    positives = ops.take_along_axis(logits, positive_columns[:, None], axis=1)[:, 0]
    negatives = ops.take_along_axis(logits, negative_columns[:, None], axis=1)[:, 0]
    return jsd_loss(positives, negatives)


def siglip_loss(image_embeddings, text_embeddings, logit_scale, logit_bias, normalize=True):
    """SigLIP's pairwise sigmoid loss.

    logits = logit_scale * I @ T.T + logit_bias; each pair is a binary
    problem with label +1 on the diagonal and -1 elsewhere, and the loss is
    -sum(log_sigmoid(z * logits)) / N, written as softplus(-z * logits).

    Args:
        image_embeddings: float (N, D).
        text_embeddings: float (N, D).
        logit_scale: positive float scalar.
        logit_bias: float scalar.
        normalize: bool. Whether to L2-normalise the embeddings first.

    Returns:
        A float32 scalar.

    Example:

    ```python
    siglip_loss(np.eye(3), np.eye(3), logit_scale=10.0, logit_bias=-10.0)
    ```
    """
    logits = similarity_logits(image_embeddings, text_embeddings, logit_scale, normalize)
    return siglip_from_logits(logits + ops.cast(logit_bias, "float32"))


def siglip_from_logits(logits, offset=0):
    """SigLIP loss on (biased) logits; row i matches column offset + i.

    For a slice of n rows against all N columns this is the slice's share:
    averaged over the slices it equals the loss of the full N x N matrix.
    """
    logits = ops.cast(logits, "float32")
    labels = 2.0 * _target_columns(logits, offset) - 1.0
    total = ops.sum(ops.softplus(-labels * logits))
    return total / ops.cast(ops.shape(logits)[0], "float32")
