"""CoCa's attentional pooler: learned queries over the image tokens."""

import keras
from keras import ops

from keras_clip.layers.cross_attention import MultiHeadCrossAttention


@keras.saving.register_keras_serializable(package="keras_clip")
class AttentionalPooler(keras.layers.Layer):
    """`num_queries` learned queries attend over a tower's tokens.

    The queries and the tokens each get their own LayerNorm, then one
    multi-head cross-attention maps the tokens (any width) to `num_queries`
    outputs of the queries' width. open_clip's CoCa image tower ends in one
    such pooler of 256 queries: the first output is the contrastive
    embedding, the other 255 are what the caption decoder attends to (Yu et
    al. 2022, "CoCa").

    Args:
        num_queries: int.
        width: int. The queries' (and outputs') width.
        num_heads: int. Divides `width`.
        layer_norm_epsilon: float.

    Call arguments:
        tokens: float (batch, tokens, token_width).

    Returns:
        float (batch, num_queries, width).

    Example:

    ```python
    pooler = AttentionalPooler(num_queries=8, width=64, num_heads=4)
    pooler(np.zeros((2, 50, 96), "float32")).shape  # (2, 8, 64)
    ```
    """

    def __init__(self, num_queries, width, num_heads, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_queries = num_queries
        self.width = width
        self.num_heads = num_heads
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        policy = self.dtype_policy
        query_shape = (input_shape[0], self.num_queries, self.width)
        # === Layers ===
        self.queries = self.add_weight(
            shape=(self.num_queries, self.width),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="query",
        )
        self.query_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="ln_q"
        )
        self.token_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="ln_k"
        )
        self.attention = MultiHeadCrossAttention(self.num_heads, dtype=policy, name="attn")
        self.query_norm.build(query_shape[1:])
        self.token_norm.build(input_shape)
        self.attention.build(query_shape, input_shape)

    def call(self, tokens):
        tokens = self.token_norm(tokens)
        queries = self.query_norm(ops.cast(self.queries, tokens.dtype))
        batch = ops.shape(tokens)[0]
        queries = ops.broadcast_to(queries[None], (batch, self.num_queries, self.width))
        return self.attention(queries, tokens)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_queries, self.width)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_queries": self.num_queries,
                "width": self.width,
                "num_heads": self.num_heads,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
