"""open_clip's pooling and projection of a Hugging Face text tower
(`HFTextEncoder`): the mean over the real tokens, then an MLP or a Linear."""

import keras
from keras import ops

PROJECTIONS = ("mlp", "linear", None)


def projection_layers(projection, width, embed_dim, dtype):
    """open_clip's `hf_proj_type` as Dense layers without biases: "mlp"
    (to (width + embed_dim) // 2, exact GELU, to embed_dim), "linear" or
    None (no layers).

    Example:

    ```python
    [layer.units for layer in projection_layers("mlp", 768, 512, "float32")]  # [640, 512]
    ```
    """
    if projection not in PROJECTIONS:
        raise ValueError(f"Unknown projection {projection!r}; expected one of {PROJECTIONS}.")
    if projection == "mlp":
        return [
            keras.layers.Dense(
                (width + embed_dim) // 2, activation="gelu", use_bias=False, dtype=dtype,
                name="proj_0",
            ),
            keras.layers.Dense(embed_dim, use_bias=False, dtype=dtype, name="proj_2"),
        ]  # fmt: skip
    if projection == "linear":
        return [keras.layers.Dense(embed_dim, use_bias=False, dtype=dtype, name="proj")]
    return []


def masked_mean(x, mask):
    """The mean of `x` (batch, length, width) over the positions where
    `mask` (batch, length) is True: open_clip's "mean_pooler"."""
    weights = ops.cast(mask, x.dtype)[:, :, None]
    return ops.sum(x * weights, axis=1) / ops.sum(weights, axis=1)
