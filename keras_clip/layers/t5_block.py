"""T5's encoder block (mT5): RMS norms, unscaled attention with a shared
relative-position bias, and a gated-GELU MLP."""

import keras
from keras import ops

from keras_clip.layers.activations import get_activation
from keras_clip.layers.attention import key_mask


@keras.saving.register_keras_serializable(package="keras_clip")
class T5EncoderBlock(keras.layers.Layer):
    """x + attn(norm(x)), then x + mlp(norm(x)), as in T5's encoder.

    The norms are RMS norms without a shift; the attention logits are
    q·k (no 1/sqrt(d) scaling, T5's initialisation absorbs it) plus a
    position bias that the tower computes once for all blocks; query, key,
    value and output projections have no bias; the MLP is
    `wo(act(wi_0 x) * wi_1 x)` ("gated-gelu": GELU's tanh form), also
    without biases.

    Args:
        num_heads: int.
        head_dim: int. Width of each head (T5's `d_kv`; heads x head_dim
            need not equal the model width).
        intermediate_size: int. MLP hidden width (`d_ff`).
        activation: str. The gate's activation ("gelu_tanh" for mT5).
        layer_norm_epsilon: float (T5: 1e-6).

    Call arguments:
        x: float (batch, length, width).
        position_bias: float (1, heads, length, length), added to the logits.
        padding_mask: optional bool (batch, length), True at the real tokens.

    Example:

    ```python
    block = T5EncoderBlock(num_heads=4, head_dim=8, intermediate_size=64)
    block(np.zeros((2, 10, 32), "float32"), np.zeros((1, 4, 10, 10), "float32")).shape
    ```
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        intermediate_size,
        activation="gelu_tanh",
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        width, inner = input_shape[-1], self.num_heads * self.head_dim
        policy = self.dtype_policy

        def dense(units, name, activation=None):
            return keras.layers.Dense(
                units, activation=activation, use_bias=False, dtype=policy, name=name
            )

        def norm(name):
            return keras.layers.RMSNormalization(
                epsilon=self.layer_norm_epsilon, dtype=policy, name=name
            )

        # === Layers ===
        self.attention_norm = norm("attention_norm")
        self.query_dense, self.key_dense, self.value_dense = (
            dense(inner, name) for name in ("q", "k", "v")
        )
        self.output_dense = dense(width, "o")
        self.mlp_norm = norm("mlp_norm")
        self.gate_dense = dense(
            self.intermediate_size, "wi_0", activation=get_activation(self.activation)
        )
        self.hidden_dense = dense(self.intermediate_size, "wi_1")
        self.mlp_output = dense(width, "wo")
        flat = (None, width)
        for layer in (self.attention_norm, self.mlp_norm, self.gate_dense, self.hidden_dense):
            layer.build(flat)
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(flat)
        self.output_dense.build((None, inner))
        self.mlp_output.build((None, self.intermediate_size))

    def call(self, x, position_bias, padding_mask=None):
        batch, length, width = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        # Dense layers on the 2-D (batch * length, width) view (see attention).
        flat = ops.reshape(x, (-1, width))
        normed = self.attention_norm(flat)
        heads = (batch, length, self.num_heads, self.head_dim)
        query, key, value = (
            ops.reshape(layer(normed), heads)
            for layer in (self.query_dense, self.key_dense, self.value_dense)
        )
        bias = ops.cast(position_bias, query.dtype)
        if padding_mask is not None:  # one additive bias (PyTorch's op takes a bias or a mask)
            bias = bias + ops.cast(ops.where(key_mask(padding_mask), 0.0, -1e9), bias.dtype)
        attended = ops.dot_product_attention(query, key, value, bias=bias, scale=1.0)
        attended = ops.reshape(attended, (-1, self.num_heads * self.head_dim))
        flat = flat + self.output_dense(attended)
        normed = self.mlp_norm(flat)
        flat = flat + self.mlp_output(self.gate_dense(normed) * self.hidden_dense(normed))
        return ops.reshape(flat, ops.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "intermediate_size": self.intermediate_size,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
