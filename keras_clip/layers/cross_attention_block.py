"""The cross-attention block of CoCa's caption decoder."""

import keras

from keras_clip.layers.activations import get_activation
from keras_clip.layers.cross_attention import MultiHeadCrossAttention
from keras_clip.layers.transformer_block import layer_scales
from keras_clip.layers.transformer_block import residual_mlp
from keras_clip.layers.transformer_block import scaled


@keras.saving.register_keras_serializable(package="keras_clip")
class CrossAttentionBlock(keras.layers.Layer):
    """x + attn(ln_1(x), ln_1_kv(context)), then + mlp(ln_2(x)).

    open_clip's `ResidualAttentionBlock(is_cross_attention=True)`: the
    text tokens (queries) and the image tokens (keys and values) are each
    LayerNormed, the text attends over the image, and a pre-LayerNorm MLP
    follows, both residual.

    Args:
        num_heads: int. Divides the width.
        mlp_ratio: float. MLP hidden width relative to the width.
        activation: str. "gelu", "quick_gelu" or a Keras activation name.
        layer_norm_epsilon: float.
        layer_scale_init: float or None. LayerScale on both branches.

    Call arguments:
        x: float (batch, length, width), the text tokens.
        context: float (batch, tokens, width), the image tokens.

    Returns:
        float (batch, length, width).

    Example:

    ```python
    block = CrossAttentionBlock(num_heads=4)
    block(np.zeros((2, 10, 64), "float32"), np.zeros((2, 49, 64), "float32")).shape  # (2, 10, 64)
    ```
    """

    def __init__(
        self,
        num_heads,
        mlp_ratio=4.0,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        layer_scale_init=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.layer_scale_init = layer_scale_init

    def build(self, x_shape, context_shape):
        width = x_shape[-1]
        hidden = int(width * self.mlp_ratio)
        policy = self.dtype_policy

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=policy, name=name
            )

        # === Layers ===
        self.query_norm = norm("ln_1")
        self.context_norm = norm("ln_1_kv")
        self.attention = MultiHeadCrossAttention(self.num_heads, dtype=policy, name="attn")
        self.mlp_norm = norm("ln_2")
        self.mlp_hidden = keras.layers.Dense(
            hidden, activation=get_activation(self.activation), dtype=policy, name="c_fc"
        )
        self.mlp_output = keras.layers.Dense(width, dtype=policy, name="c_proj")
        self.query_norm.build(x_shape)
        self.context_norm.build(context_shape)
        self.attention.build(x_shape, context_shape)
        self.mlp_norm.build(x_shape)
        self.mlp_hidden.build(x_shape)
        self.mlp_output.build(tuple(x_shape[:-1]) + (hidden,))
        self.attention_scale, self.mlp_scale = layer_scales(
            self, width, self.layer_scale_init, ("ls_1", "ls_2")
        )

    def call(self, x, context):
        attended = self.attention(self.query_norm(x), self.context_norm(context))
        return residual_mlp(self, x + scaled(attended, self.attention_scale))

    def compute_output_shape(self, x_shape, context_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "layer_scale_init": self.layer_scale_init,
            }
        )
        return config
