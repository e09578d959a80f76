"""CLIP's default optimizer: AdamW without decay on gains, biases, scales."""

import keras

NO_DECAY_PATTERNS = ("bias", "gamma", "beta", "embedding", "logit")


def default_optimizer(learning_rate=5e-4, weight_decay=0.2, **kwargs):
    """AdamW with CLIP's betas and epsilon (0.9, 0.98, 1e-6).

    Weight decay applies to kernels only. Excluded by name: biases,
    normalisation gains and offsets ("gamma", "beta"), every variable whose
    name has "embedding" (the token and position embeddings, the class
    token), and the logit scale and bias. open_clip's rule differs: it
    excludes tensors with fewer than 2 dimensions and norm, bias and
    logit-scale parameters, so it does decay the (2-D) token and position
    embeddings, which this rule does not.

    Args:
        learning_rate: float or a `keras.optimizers.schedules` schedule.
        weight_decay: float.
        **kwargs: passed to `keras.optimizers.AdamW`.

    Example:

    ```python
    model.compile(optimizer=default_optimizer(1e-3))
    ```
    """
    kwargs.setdefault("beta_1", 0.9)
    kwargs.setdefault("beta_2", 0.98)
    kwargs.setdefault("epsilon", 1e-6)
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay, **kwargs
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_PATTERNS))
    return optimizer
