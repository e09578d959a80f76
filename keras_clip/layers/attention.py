"""Multi-head self-attention with a fused query/key/value projection."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Self-attention as in OpenAI CLIP's `nn.MultiheadAttention` blocks.

    One Dense projects to queries, keys and values at once (CLIP's
    `in_proj_weight` layout); `keras.ops.dot_product_attention` computes
    softmax(q k^T / sqrt(d)) v, with an optional causal mask; a second Dense
    projects the heads back.

    Args:
        num_heads: int. Number of attention heads; must divide the width.
        use_causal_mask: bool. Whether position i may only attend to j <= i.

    Call arguments:
        x: float (batch, length, width).
        padding_mask: optional bool (batch, length), True at the real
            tokens: no query attends to a padded key (NaFlex's padded
            patch sequences).

    Example:

    ```python
    attention = MultiHeadSelfAttention(num_heads=4, use_causal_mask=True)
    attention(np.zeros((2, 10, 64), "float32")).shape  # (2, 10, 64)
    ```
    """

    def __init__(self, num_heads, use_causal_mask=False, **kwargs):
        super().__init__(**kwargs)
        if num_heads <= 0:
            raise ValueError(f"num_heads must be positive, got {num_heads}.")
        self.num_heads = num_heads
        self.use_causal_mask = use_causal_mask

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"The width {width} is not divisible by num_heads={self.num_heads}.")
        self.head_dim = width // self.num_heads
        # === Layers ===
        self.qkv_dense = keras.layers.Dense(3 * width, dtype=self.dtype_policy, name="qkv")
        self.qkv_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(width, dtype=self.dtype_policy, name="output")
        self.output_dense.build(input_shape)

    def call(self, x, padding_mask=None):
        batch, length, width = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        # Dense on the 2-D (batch * length, width) view: XLA on CPU runs the
        # backward pass of a 3-D matmul about 2.5x slower.
        qkv = self.qkv_dense(ops.reshape(x, (-1, width)))
        qkv = ops.reshape(qkv, (batch, length, 3, self.num_heads, self.head_dim))
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        attended = ops.dot_product_attention(
            query, key, value, mask=key_mask(padding_mask), is_causal=self.use_causal_mask
        )
        attended = ops.reshape(attended, (-1, self.num_heads * self.head_dim))
        return ops.reshape(self.output_dense(attended), (batch, length, width))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "use_causal_mask": self.use_causal_mask})
        return config


def key_mask(padding_mask):
    """A (batch, length) padding mask as `ops.dot_product_attention`'s
    (batch, heads, queries, keys) mask: (batch, 1, 1, length); None stays None."""
    if padding_mask is None:
        return None
    return ops.cast(padding_mask, "bool")[:, None, None, :]
