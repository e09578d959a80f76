"""A learned relative-position bias for a square patch grid, from
log-spaced coordinates through a small MLP (timm's `RelPosMlp`, "cr" mode:
Swin-V2's idea, as `vit_relpos_*` uses it)."""

import keras
import numpy as np
from keras import ops


def relative_log_coordinates(grid_size):
    """The (dy, dx) of every relative offset in a grid, as sign(d) * log(1 +
    |d|) in float32, rows first: ((2 * grid_size - 1) ** 2, 2)."""
    offsets = np.arange(-(grid_size - 1), grid_size, dtype="float32")
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    coordinates = np.stack([dy, dx], axis=-1).reshape(-1, 2)
    return (np.sign(coordinates) * np.log(np.float32(1.0) + np.abs(coordinates))).astype("float32")


def relative_position_index(grid_size):
    """For each (query, key) pair of the grid's cells (row-major), the row of
    `relative_log_coordinates` holding their offset: (cells, cells) int32."""
    rows, columns = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    coordinates = np.stack([rows.ravel(), columns.ravel()])
    relative = coordinates[:, :, None] - coordinates[:, None, :] + (grid_size - 1)
    return (relative[0] * (2 * grid_size - 1) + relative[1]).astype("int32")


@keras.saving.register_keras_serializable(package="keras_clip")
class RelativePositionMLP(keras.layers.Layer):
    """The attention bias of a grid's patch tokens, one value per head and
    (query, key) pair: an MLP (2 -> hidden, ReLU, -> heads) over the pair's
    log-spaced offset. Prefix tokens (a class token) get no bias.

    Args:
        grid_size: int. Patches per side.
        num_heads: int.
        hidden_dim: int. The MLP's hidden width (timm's `rel_pos_dim`).
        num_prefix_tokens: int. Tokens before the patches.

    Call arguments:
        logits: float (batch, heads, tokens, tokens), tokens = prefix +
            grid_size ** 2; returned with the bias added (`bias()` gives the
            bias alone, (1, heads, tokens, tokens)).

    Example:

    ```python
    layer = RelativePositionMLP(grid_size=4, num_heads=2, hidden_dim=8, num_prefix_tokens=1)
    layer.build()
    layer.bias().shape  # (1, 2, 17, 17)
    ```
    """

    def __init__(self, grid_size, num_heads, hidden_dim=256, num_prefix_tokens=0, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = grid_size
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.num_prefix_tokens = num_prefix_tokens
        self._coordinates = relative_log_coordinates(grid_size)
        self._index = relative_position_index(grid_size).reshape(-1)

    def build(self, input_shape=None):
        policy = self.dtype_policy
        # === Layers ===
        self.hidden_dense = keras.layers.Dense(
            self.hidden_dim, activation="relu", dtype=policy, name="fc1"
        )
        self.output_dense = keras.layers.Dense(self.num_heads, dtype=policy, name="fc2")
        self.hidden_dense.build((None, 2))
        self.output_dense.build((None, self.hidden_dim))

    def call(self, logits):
        return logits + ops.cast(self.bias(), logits.dtype)

    def bias(self):
        """(1, heads, tokens, tokens): the bias of key j for query i."""
        table = self.output_dense(self.hidden_dense(ops.convert_to_tensor(self._coordinates)))
        cells = self.grid_size**2
        bias = ops.take(table, ops.convert_to_tensor(self._index), axis=0)
        bias = ops.transpose(ops.reshape(bias, (cells, cells, self.num_heads)), (2, 0, 1))
        prefix = self.num_prefix_tokens
        if prefix:
            bias = ops.pad(bias, ((0, 0), (prefix, 0), (prefix, 0)))
        return bias[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "num_prefix_tokens": self.num_prefix_tokens,
            }
        )
        return config
