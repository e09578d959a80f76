"""Swin Transformer's layers (Liu et al. 2021), as timm's `swin_transformer`
computes them: the (shifted-)window attention block and patch merging."""

import keras
import numpy as np
from keras import ops

# timm's value for the positions of another region inside a shifted window.
SHIFTED_MASK_VALUE = -100.0


def relative_position_index(window):
    """(window**2, window**2) int: the row of the relative-position bias table
    each pair of positions in a window reads (timm's `get_relative_position_index`)."""
    rows, cols = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return (relative[..., 0] * (2 * window - 1) + relative[..., 1]).astype("int32")


def shifted_window_mask(resolution, window, shift):
    """(windows, window**2, window**2) float32: 0 where two positions of a
    shifted window come from the same region of the image, -100 elsewhere."""
    regions = np.zeros((resolution, resolution), "float32")
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bounds):
        for j, cols in enumerate(bounds):
            regions[rows, cols] = 3 * i + j
    grid = resolution // window
    windows = regions.reshape(grid, window, grid, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(grid * grid, window * window)
    different = windows[:, None, :] != windows[:, :, None]
    return np.where(different, SHIFTED_MASK_VALUE, 0.0).astype("float32")


def _partition(x, window):
    """(batch, H, W, C) -> (batch * windows, window**2, C)."""
    _, height, width, channels = x.shape
    x = ops.reshape(x, (-1, height // window, window, width // window, window, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, window * window, channels))


def _merge(windows, window, height, width):
    """The inverse of `_partition`."""
    channels = windows.shape[-1]
    x = ops.reshape(windows, (-1, height // window, width // window, window, window, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package="keras_clip")
class SwinBlock(keras.layers.Layer):
    """A Swin block on a (batch, H, W, C) map: x + attention(norm(x)) within
    windows of `window` x `window` positions (cyclically shifted by `shift`,
    with a relative-position bias per head, and a mask where a shifted window
    joins distant regions), then x + MLP(norm(x)) (exact GELU).

    Args:
        num_heads: int.
        window: int. Window side (at most the map's side).
        shift: int. Cyclic shift (0: none; timm: window // 2 on odd blocks).
        mlp_ratio: float.
        layer_norm_epsilon: float.

    Example:

    ```python
    SwinBlock(4, window=4, shift=2)(np.zeros((2, 8, 8, 32), "float32")).shape  # (2, 8, 8, 32)
    ```
    """

    def __init__(
        self, num_heads, window, shift=0, mlp_ratio=4.0, layer_norm_epsilon=1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        if not 0 <= shift < window:
            raise ValueError(f"shift must be in [0, window), got {shift} for window {window}.")
        self.num_heads = num_heads
        self.window = window
        self.shift = shift
        self.mlp_ratio = mlp_ratio
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if height != width or height % self.window or channels % self.num_heads:
            raise ValueError(
                f"SwinBlock needs a square map whose side is a multiple of the window "
                f"({self.window}) and channels divisible by the heads; got {input_shape}."
            )
        policy = self.dtype_policy
        hidden = round(channels * self.mlp_ratio)
        # === Layers ===
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm1"
        )
        self.qkv = keras.layers.Dense(3 * channels, dtype=policy, name="qkv")
        self.proj = keras.layers.Dense(channels, dtype=policy, name="proj")
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm2"
        )
        self.fc1 = keras.layers.Dense(hidden, dtype=policy, name="fc1")
        self.fc2 = keras.layers.Dense(channels, dtype=policy, name="fc2")
        for layer in (self.norm1, self.qkv, self.proj, self.norm2, self.fc1):
            layer.build((None, channels))
        self.fc2.build((None, hidden))
        self.bias_table = self.add_weight(
            shape=((2 * self.window - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.position_index = relative_position_index(self.window)
        self.mask = None
        if self.shift:
            self.mask = shifted_window_mask(height, self.window, self.shift)

    def _attention(self, x):
        _, height, width, channels = x.shape
        if self.shift:
            x = ops.roll(x, (-self.shift, -self.shift), axis=(1, 2))
        windows = _partition(x, self.window)
        area, heads = self.window**2, self.num_heads
        qkv = ops.reshape(self.qkv(windows), (-1, area, 3, heads, channels // heads))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        query, key, value = qkv[0], qkv[1], qkv[2]
        scale = ops.cast((channels // heads) ** -0.5, query.dtype)
        scores = ops.matmul(query * scale, ops.transpose(key, (0, 1, 3, 2)))
        index = ops.convert_to_tensor(self.position_index.reshape(-1))
        bias = ops.reshape(ops.take(self.bias_table, index, axis=0), (area, area, heads))
        scores = scores + ops.cast(ops.transpose(bias, (2, 0, 1))[None], scores.dtype)
        if self.mask is not None:
            count = self.mask.shape[0]
            scores = ops.reshape(scores, (-1, count, heads, area, area))
            scores = scores + ops.cast(
                ops.convert_to_tensor(self.mask)[None, :, None], scores.dtype
            )
            scores = ops.reshape(scores, (-1, heads, area, area))
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        attended = ops.matmul(ops.cast(weights, value.dtype), value)
        attended = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (-1, area, channels))
        x = _merge(self.proj(attended), self.window, height, width)
        if self.shift:
            x = ops.roll(x, (self.shift, self.shift), axis=(1, 2))
        return x

    def call(self, x):
        x = x + self._attention(self.norm1(x))
        hidden = keras.activations.gelu(self.fc1(self.norm2(x)), approximate=False)
        return x + self.fc2(hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "window": self.window,
                "shift": self.shift,
                "mlp_ratio": self.mlp_ratio,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class PatchMerging(keras.layers.Layer):
    """Halves a (batch, H, W, C) map's sides: each 2 x 2 block's features
    concatenated (timm's order: (0,0), (1,0), (0,1), (1,1) as (row, column)),
    LayerNorm, then a bias-free Dense to `filters` (timm: 2 C).

    Args:
        filters: int.
        layer_norm_epsilon: float.

    Example:

    ```python
    PatchMerging(64)(np.zeros((2, 8, 8, 32), "float32")).shape  # (2, 4, 4, 64)
    ```
    """

    def __init__(self, filters, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if height % 2 or width % 2:
            raise ValueError(f"PatchMerging needs even sides, got {input_shape}.")
        # === Layers ===
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.reduction = keras.layers.Dense(
            self.filters, use_bias=False, dtype=self.dtype_policy, name="reduction"
        )
        self.norm.build((None, 4 * channels))
        self.reduction.build((None, 4 * channels))

    def call(self, x):
        _, height, width, channels = x.shape
        x = ops.reshape(x, (-1, height // 2, 2, width // 2, 2, channels))
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))  # column offset, then row offset
        x = ops.reshape(x, (-1, height // 2, width // 2, 4 * channels))
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        return (batch, height // 2, width // 2, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "layer_norm_epsilon": self.layer_norm_epsilon})
        return config
