"""CoCa's captioning objective: next-token cross-entropy over the caption."""

from keras import ops


def caption_loss(logits, token_ids, pad_token_id=0):
    """Mean next-token cross-entropy of a caption decoder, in float32.

    Position i of `logits` predicts token i + 1 of `token_ids`; positions
    whose target is `pad_token_id` are left out of the mean (open_clip's
    `CoCaLoss`: `CrossEntropyLoss(ignore_index=pad_id)` over the batch's
    real tokens).

    Args:
        logits: float (batch, length - 1, vocabulary), the decoder's output
            on the caption without its last token.
        token_ids: int (batch, length), the whole caption.
        pad_token_id: int.

    Returns:
        float32 scalar.

    Example:

    ```python
    logits = np.zeros((2, 4, 10), "float32")
    caption_loss(logits, np.array([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]]))  # log(10)
    ```
    """
    labels = token_ids[:, 1:]
    if logits.shape[1] is not None and labels.shape[1] is not None:
        if logits.shape[1] != labels.shape[1]:
            raise ValueError(
                f"The decoder gave {logits.shape[1]} positions for a caption of "
                f"{token_ids.shape[1]} tokens; expected {labels.shape[1]}."
            )
    logits = ops.cast(logits, "float32")
    per_token = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    real = ops.cast(ops.not_equal(labels, pad_token_id), "float32")
    return ops.sum(per_token * real) / ops.maximum(ops.sum(real), 1.0)
