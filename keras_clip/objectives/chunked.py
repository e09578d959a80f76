"""Contrastive losses in row chunks, with hand-written gradients: memory
O(chunk x N).

Autodiff of a plain loss keeps the (rows x N) logits and their softmax or
sigmoid alive for the backward pass; at a global batch of 32,768 that is 4
GiB per matrix. Here the forward pass keeps at most one number per row,
and the backward pass recomputes one (chunk x N) block of logits at a time.

InfoNCE (`chunked_infonce`), rows against their column t(i) = offset + i:

    L = mean_i [lse_j(z_ij) - z_i,t(i)],   z = s * Q K^T
    dL/dz = (softmax(z) - onehot(t)) / n
    dL/dQ = s (dL/dz) K,  dL/dK = s (dL/dz)^T Q,  dL/ds = sum(dL/dz * z) / s

SigLIP's sigmoid loss (`chunked_sigmoid_loss`), y_ij = +1 if j = t(i) else -1:

    L = sum_ij softplus(-y_ij z_ij) / n,   z = s * Q K^T + b
    dL/dz = -y sigmoid(-y z) / n,  dL/ds = sum(dL/dz * (z - b)) / s,
    dL/db = sum(dL/dz), and dL/dQ, dL/dK as above

Keras ops only (`ops.custom_gradient`, `ops.fori_loop`), so they run on the
TensorFlow, JAX and PyTorch backends.
"""

from keras import ops


def chunked_cross_entropy(queries, keys, logit_scale, offset=0, chunk_size=1024):
    """Mean cross-entropy of `logit_scale * queries @ keys.T` rows against
    column `offset + i`, computed `chunk_size` rows at a time.

    Args:
        queries: float (n, D), e.g. this replica's image embeddings.
        keys: float (N, D), e.g. the global batch's text embeddings.
        logit_scale: positive float scalar.
        offset: int or scalar tensor, the global index of the first query.
        chunk_size: int, rows per block.

    Returns:
        A float32 scalar, equal to the plain cross-entropy; its gradient
        with respect to queries, keys and logit_scale is exact.

    Example:

    ```python
    loss = chunked_cross_entropy(image_embeddings, text_embeddings, 100.0)
    ```
    """
    queries = ops.cast(queries, "float32")
    keys = ops.cast(keys, "float32")
    logit_scale = ops.cast(logit_scale, "float32")
    offset = ops.cast(offset, "int32")
    return _with_chunked_gradient(
        _chunked_forward, _chunked_backward, (queries, keys, logit_scale), offset, chunk_size
    )


def chunked_sigmoid_loss(queries, keys, logit_scale, logit_bias, offset=0, chunk_size=1024):
    """SigLIP's sigmoid loss of `logit_scale * queries @ keys.T + logit_bias`
    (row i's match is column `offset + i`, every other pair a negative),
    computed `chunk_size` rows at a time.

    Args:
        queries: float (n, D), e.g. this replica's image embeddings.
        keys: float (N, D), e.g. the global batch's text embeddings.
        logit_scale: positive float scalar.
        logit_bias: float scalar.
        offset: int or scalar tensor, the global index of the first query.
        chunk_size: int, rows per block.

    Returns:
        A float32 scalar equal to `functional.siglip_from_logits` of the
        whole (n, N) logits; its gradient with respect to queries, keys,
        logit_scale and logit_bias is exact.

    Example:

    ```python
    loss = chunked_sigmoid_loss(image_embeddings, text_embeddings, 10.0, -10.0)
    ```
    """
    tensors = tuple(ops.cast(x, "float32") for x in (queries, keys, logit_scale, logit_bias))
    offset = ops.cast(offset, "int32")
    return _with_chunked_gradient(_sigmoid_forward, _sigmoid_backward, tensors, offset, chunk_size)


def chunked_infonce(
    image_rows, text_rows, all_images, all_texts, logit_scale, offset=0, chunk_size=1024
):
    """Symmetric InfoNCE of local rows against the global batch, in chunks.

    Equal to `functional.infonce_from_row_logits` (and, with all rows local and
    offset 0, to `functional.clip_loss` on normalised embeddings).
    """
    image_to_text = chunked_cross_entropy(image_rows, all_texts, logit_scale, offset, chunk_size)
    text_to_image = chunked_cross_entropy(text_rows, all_images, logit_scale, offset, chunk_size)
    return (image_to_text + text_to_image) / 2.0


def _blocks(queries, chunk_size):
    """Queries padded to whole chunks, the row count and the chunk count."""
    rows = ops.shape(queries)[0]
    padding = ops.zeros((chunk_size, ops.shape(queries)[1]), "float32")
    count = (rows + chunk_size - 1) // chunk_size
    return ops.concatenate([queries, padding], axis=0), rows, count


def _block(padded, rows, offset, index, chunk_size, keys, logit_scale):
    """Block `index`: its queries, logits, target columns and valid rows."""
    start = index * chunk_size
    block = ops.slice(padded, (start, 0), (chunk_size, ops.shape(padded)[1]))
    logits = logit_scale * ops.matmul(block, ops.transpose(keys))
    positions = start + ops.arange(chunk_size, dtype="int32")
    valid = ops.cast(positions < rows, "float32")
    columns = ops.shape(keys)[0]
    targets = ops.minimum(positions + offset, columns - 1)
    return block, logits, targets, valid


def _chunked_forward(queries, keys, logit_scale, offset, chunk_size):
    padded, rows, count = _blocks(queries, chunk_size)

    def body(index, state):
        total, lse_all = state
        _, logits, targets, valid = _block(
            padded, rows, offset, index, chunk_size, keys, logit_scale
        )
        lse = ops.logsumexp(logits, axis=1)
        target_logits = ops.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
        total = total + ops.sum((lse - target_logits) * valid)
        lse_all = ops.slice_update(lse_all, (index * chunk_size,), lse)
        return total, lse_all

    lse_all = ops.zeros((ops.shape(padded)[0],), "float32")
    total, lse_all = ops.fori_loop(0, count, body, (ops.zeros((), "float32"), lse_all))
    return total / ops.cast(rows, "float32"), lse_all


def _chunked_backward(queries, keys, logit_scale, offset, chunk_size, lse_all, upstream):
    padded, rows, count = _blocks(queries, chunk_size)
    columns = ops.shape(keys)[0]
    weight = upstream / ops.cast(rows, "float32")

    def body(index, state):
        query_grads, key_grads, scale_grad = state
        block, logits, targets, valid = _block(
            padded, rows, offset, index, chunk_size, keys, logit_scale
        )
        lse = ops.slice(lse_all, (index * chunk_size,), (chunk_size,))
        probabilities = ops.exp(logits - lse[:, None])
        targets_one_hot = ops.one_hot(targets, columns, dtype="float32")
        logit_grads = (probabilities - targets_one_hot) * (valid * weight)[:, None]
        query_grads = ops.slice_update(
            query_grads, (index * chunk_size, 0), logit_scale * ops.matmul(logit_grads, keys)
        )
        key_grads = key_grads + logit_scale * ops.matmul(ops.transpose(logit_grads), block)
        scale_grad = scale_grad + ops.sum(logit_grads * logits) / logit_scale
        return query_grads, key_grads, scale_grad

    state = (ops.zeros_like(padded), ops.zeros_like(keys), ops.zeros((), "float32"))
    query_grads, key_grads, scale_grad = ops.fori_loop(0, count, body, state)
    return query_grads[:rows], key_grads, scale_grad


def _sigmoid_block(padded, rows, offset, index, chunk_size, keys, logit_scale, logit_bias):
    """Block `index` for the sigmoid loss: its queries, biased logits,
    labels (+1 for the match, -1 elsewhere) and valid rows."""
    block, logits, targets, valid = _block(
        padded, rows, offset, index, chunk_size, keys, logit_scale
    )
    labels = 2.0 * ops.one_hot(targets, ops.shape(keys)[0], dtype="float32") - 1.0
    return block, logits + logit_bias, labels, valid


def _sigmoid_forward(queries, keys, logit_scale, logit_bias, offset, chunk_size):
    padded, rows, count = _blocks(queries, chunk_size)

    def body(index, total):
        _, logits, labels, valid = _sigmoid_block(
            padded, rows, offset, index, chunk_size, keys, logit_scale, logit_bias
        )
        return total + ops.sum(ops.softplus(-labels * logits) * valid[:, None])

    total = ops.fori_loop(0, count, body, ops.zeros((), "float32"))
    return total / ops.cast(rows, "float32"), None


def _sigmoid_backward(queries, keys, logit_scale, logit_bias, offset, chunk_size, _, upstream):
    padded, rows, count = _blocks(queries, chunk_size)
    weight = upstream / ops.cast(rows, "float32")

    def body(index, state):
        query_grads, key_grads, scale_grad, bias_grad = state
        block, logits, labels, valid = _sigmoid_block(
            padded, rows, offset, index, chunk_size, keys, logit_scale, logit_bias
        )
        logit_grads = -labels * ops.sigmoid(-labels * logits) * (valid * weight)[:, None]
        query_grads = ops.slice_update(
            query_grads, (index * chunk_size, 0), logit_scale * ops.matmul(logit_grads, keys)
        )
        key_grads = key_grads + logit_scale * ops.matmul(ops.transpose(logit_grads), block)
        scale_grad = scale_grad + ops.sum(logit_grads * (logits - logit_bias)) / logit_scale
        bias_grad = bias_grad + ops.sum(logit_grads)
        return query_grads, key_grads, scale_grad, bias_grad

    zero = ops.zeros((), "float32")
    state = (ops.zeros_like(padded), ops.zeros_like(keys), zero, zero)
    query_grads, key_grads, scale_grad, bias_grad = ops.fori_loop(0, count, body, state)
    return query_grads[:rows], key_grads, scale_grad, bias_grad


def _with_chunked_gradient(forward, backward, tensors, *settings):
    """`forward(*tensors, *settings)` -> (loss, saved), whose gradient with
    respect to `tensors` is `backward(*tensors, *settings, saved, upstream)`."""

    @ops.custom_gradient
    def loss_fn(*tensors):
        # Stopped inputs: an eager TensorFlow tape would otherwise record the
        # forward blocks (and keep every one alive) besides this gradient.
        loss, saved = forward(*[ops.stop_gradient(t) for t in tensors], *settings)

        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return backward(*tensors, *settings, saved, ops.cast(upstream, "float32"))

        return loss, grad

    return loss_fn(*tensors)
