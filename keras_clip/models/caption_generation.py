"""Writing captions one token at a time from a next-token function.

The loop is open_clip's `CoCa.generate` for its "top_k" and "top_p" modes:
each caption starts with the start token; at each step the end token is
refused while a caption is shorter than `min_length`, the logits are cut to
the top k and/or top p (Hugging Face's `TopKLogitsWarper` and
`TopPLogitsWarper` rules), divided by the temperature and sampled (greedy
takes the largest); the token before `max_length` is forced to be the end;
a caption that has ended (end or padding token last) gets padding; the loop
stops when every caption has ended or is `max_length` long.

Captions are held in a fixed (batch, max_length) buffer padded with the
padding id, so the next-token function sees one shape throughout (it is
compiled once); causal attention keeps every prediction from reading the
positions after it.
"""

import numpy as np

METHODS = ("greedy", "sample")


def _top_k(logits, k):
    """Logits below each row's k-th largest set to -inf (ties kept)."""
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = np.sort(logits, axis=-1)[:, -k][:, None]
    return np.where(logits < kth, -np.inf, logits)


def _top_p(logits, p):
    """Only each row's likeliest tokens whose probabilities first reach `p`
    (at least one) keep their logits."""
    if p is None or p >= 1.0:
        return logits
    order = np.argsort(logits, axis=-1, kind="stable")  # ascending, as HF
    ordered = np.take_along_axis(logits, order, axis=-1)
    probs = np.exp(ordered - ordered.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    remove = np.cumsum(probs, axis=-1) <= 1.0 - p
    remove[:, -1] = False
    removed = np.zeros_like(remove)
    np.put_along_axis(removed, order, remove, axis=-1)
    return np.where(removed, -np.inf, logits)


def _choose(logits, method, top_k, top_p, temperature, rng):
    if method == "greedy":
        return np.argmax(logits, axis=-1)
    logits = _top_p(_top_k(logits, top_k), top_p) / temperature
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in probs])


def generate_captions(
    next_logits,
    batch_size,
    max_length,
    min_length,
    method,
    top_k,
    top_p,
    temperature,
    rng,
    start_token_id,
    end_token_id,
    pad_token_id,
):
    """Token ids (batch, length <= max_length) of generated captions.

    Args:
        next_logits: a function (token_ids (batch, max_length) int32,
            position int) -> float (batch, vocabulary): the logits that
            follow `position` in each caption.
        batch_size: int. The number of images.
        max_length: int. Tokens per caption, start and end included.
        min_length: int. The end token is refused before this many tokens.
        method: "greedy" or "sample".
        top_k: int or None. "sample" keeps the k likeliest tokens.
        top_p: float or None. "sample" keeps the likeliest tokens whose
            probabilities first sum to top_p.
        temperature: float. "sample" divides the logits by it.
        rng: a `numpy.random.Generator`, for "sample".
        start_token_id: int.
        end_token_id: int.
        pad_token_id: int.

    Returns:
        int32 NumPy array.

    Example:

    ```python
    def next_logits(token_ids, position):  # always says token 3, then the end (9)
        return np.eye(10)[[3 if position < 4 else 9] * len(token_ids)]

    generate_captions(
        next_logits, batch_size=2, max_length=8, min_length=2, method="greedy",
        top_k=None, top_p=None, temperature=1.0, rng=None,
        start_token_id=8, end_token_id=9, pad_token_id=0,
    )  # [[8, 3, 3, 3, 3, 9], [8, 3, 3, 3, 3, 9]]
    ```
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
    if method == "sample" and not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    ids = np.full((batch_size, max_length), pad_token_id, dtype="int32")
    ids[:, 0] = start_token_id
    length = 1
    while length < max_length:
        last = ids[:, length - 1]
        live = np.flatnonzero((last != end_token_id) & (last != pad_token_id)).astype("int32")
        if live.size == 0:
            break
        if length + 1 == max_length:
            chosen = np.full(live.size, end_token_id)
        else:
            logits = np.array(next_logits(ids, length - 1), dtype="float64")[live]
            if length < min_length:
                logits[:, end_token_id] = -np.inf
            chosen = _choose(logits, method, top_k, top_p, temperature, rng)
        ids[live, length] = chosen
        length += 1
    return ids[:, :length]
