"""Pooling rules that turn a tower's sequence output into one vector."""

from keras import ops


def end_token_positions(token_ids, end_token_id=None):
    """Index of each caption's end-of-text token.

    The first occurrence of `end_token_id`; when it is None, the first
    occurrence of the caption's largest id (OpenAI's tokenizer makes
    end-of-text the largest id). A caption without the token pools at
    position 0, as open_clip's "eos" pooling and Hugging Face's CLIP do
    (an argmax over an all-false mask); the tokenizers here always write it.

    Args:
        token_ids: int (batch, length).
        end_token_id: int or None.

    Returns:
        int32 (batch,).
    """
    length = ops.shape(token_ids)[1]
    if end_token_id is None:
        is_end = token_ids == ops.max(token_ids, axis=1, keepdims=True)
    else:
        is_end = token_ids == end_token_id
    positions = ops.arange(length, dtype="int32")[None, :]
    first = ops.min(ops.where(is_end, positions, length), axis=1)
    return ops.where(first == length, 0, first)


def gather_positions(sequence, positions):
    """Picks `sequence[b, positions[b]]` for each b: (batch, width)."""
    selector = ops.one_hot(positions, ops.shape(sequence)[1], dtype=sequence.dtype)
    return ops.einsum("bl,blw->bw", selector, sequence)
