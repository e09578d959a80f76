"""BERT's post-LayerNorm encoder block (RoBERTa, XLM-RoBERTa)."""

import keras
from keras import ops

from keras_clip.layers.activations import get_activation
from keras_clip.layers.attention import MultiHeadSelfAttention


@keras.saving.register_keras_serializable(package="keras_clip")
class PostNormTransformerBlock(keras.layers.Layer):
    """x = norm(x + attn(x)), then x = norm(x + mlp(x)), as in BERT.

    The LayerNorms come after each residual sum (CLIP's blocks put them
    before). The attention is bidirectional; padded tokens are masked as
    keys.

    Args:
        num_heads: int. Number of attention heads.
        intermediate_size: int. Hidden width of the MLP.
        activation: str. "gelu" (BERT's exact, erf-based GELU) or any name
            `keras_clip.layers.activations.get_activation` knows.
        layer_norm_epsilon: float (RoBERTa: 1e-5).

    Call arguments:
        x: float (batch, length, width).
        padding_mask: optional bool (batch, length), True at the real tokens.

    Example:

    ```python
    block = PostNormTransformerBlock(num_heads=4, intermediate_size=128)
    block(np.zeros((2, 10, 64), "float32")).shape  # (2, 10, 64)
    ```
    """

    def __init__(
        self, num_heads, intermediate_size, activation="gelu", layer_norm_epsilon=1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        if intermediate_size <= 0:
            raise ValueError(f"intermediate_size must be positive, got {intermediate_size}.")
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        policy = self.dtype_policy
        # === Layers ===
        self.attention = MultiHeadSelfAttention(self.num_heads, dtype=policy, name="attention")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="attention_norm"
        )
        self.mlp_hidden = keras.layers.Dense(
            self.intermediate_size,
            activation=get_activation(self.activation),
            dtype=policy,
            name="intermediate",
        )
        self.mlp_output = keras.layers.Dense(width, dtype=policy, name="output")
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="output_norm"
        )
        for layer in (self.attention, self.attention_norm, self.mlp_hidden, self.mlp_norm):
            layer.build(input_shape)
        self.mlp_output.build(tuple(input_shape[:-1]) + (self.intermediate_size,))

    def call(self, x, padding_mask=None):
        x = self.attention_norm(x + self.attention(x, padding_mask=padding_mask))
        # The MLP runs on the 2-D (batch * length, width) view (see attention).
        flat = ops.reshape(x, (-1, x.shape[-1]))
        flat = self.mlp_norm(flat + self.mlp_output(self.mlp_hidden(flat)))
        return ops.reshape(flat, ops.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_size": self.intermediate_size,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
