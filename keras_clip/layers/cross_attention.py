"""Multi-head attention of queries over a separate context sequence."""

import keras
from keras import ops

from keras_clip.layers.attention import key_mask


@keras.saving.register_keras_serializable(package="keras_clip")
class MultiHeadCrossAttention(keras.layers.Layer):
    """Queries from one sequence attend over keys and values of another.

    As PyTorch's `nn.MultiheadAttention(query, context, context)`: biased
    query, key and value projections (the context may be wider or narrower
    than the queries: open_clip's attentional pooler reads 768-wide image
    tokens with 512-wide queries), softmax(q k^T / sqrt(d)) v per head, and
    a biased output projection back to the query width.

    Args:
        num_heads: int. Attention heads; divides the query width.

    Call arguments:
        queries: float (batch, queries, width).
        context: float (batch, tokens, context_width).
        context_mask: optional bool (batch, tokens), True at the real
            context tokens.

    Returns:
        float (batch, queries, width).

    Example:

    ```python
    attention = MultiHeadCrossAttention(num_heads=4)
    queries, image_tokens = np.zeros((2, 5, 64), "float32"), np.zeros((2, 49, 96), "float32")
    attention(queries, image_tokens).shape  # (2, 5, 64)
    ```
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        if num_heads <= 0:
            raise ValueError(f"num_heads must be positive, got {num_heads}.")
        self.num_heads = num_heads

    def build(self, queries_shape, context_shape):
        width = queries_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"The width {width} is not divisible by num_heads={self.num_heads}.")
        self.head_dim = width // self.num_heads
        policy = self.dtype_policy
        # === Layers ===
        self.query_dense = keras.layers.Dense(width, dtype=policy, name="query")
        self.key_dense = keras.layers.Dense(width, dtype=policy, name="key")
        self.value_dense = keras.layers.Dense(width, dtype=policy, name="value")
        self.output_dense = keras.layers.Dense(width, dtype=policy, name="output")
        self.query_dense.build(queries_shape)
        self.output_dense.build(queries_shape)
        for layer in (self.key_dense, self.value_dense):
            layer.build(context_shape)

    def call(self, queries, context, context_mask=None):
        def heads(x, dense):
            batch, length = ops.shape(x)[0], ops.shape(x)[1]
            projected = dense(ops.reshape(x, (-1, x.shape[-1])))
            return ops.reshape(projected, (batch, length, self.num_heads, self.head_dim))

        attended = ops.dot_product_attention(
            heads(queries, self.query_dense),
            heads(context, self.key_dense),
            heads(context, self.value_dense),
            mask=key_mask(context_mask),
        )
        width = queries.shape[-1]
        output = self.output_dense(ops.reshape(attended, (-1, width)))
        return ops.reshape(output, ops.shape(queries))

    def compute_output_shape(self, queries_shape, context_shape):
        return queries_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads})
        return config
