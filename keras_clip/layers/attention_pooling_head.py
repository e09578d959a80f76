"""SigLIP's attention-pooling ("MAP") head."""

import keras
from keras import ops

from keras_clip.layers.activations import get_activation
from keras_clip.layers.attention import key_mask


@keras.saving.register_keras_serializable(package="keras_clip")
class AttentionPoolingHead(keras.layers.Layer):
    """Pools tokens with a learned probe query, then a residual MLP.

    A learned probe (one token) attends over all tokens with multi-head
    attention (query, key and value from one fused projection, as PyTorch's
    `nn.MultiheadAttention` stores `in_proj_weight`; an output projection);
    the result r gives r + mlp(LayerNorm(r)). This is the multihead
    attention pooling of SigLIP's vision tower (Zhai et al. 2023).

    Args:
        num_heads: int. Attention heads; divides the width.
        mlp_ratio: float. MLP hidden width relative to the width.
        activation: str. The MLP's activation ("gelu_tanh" for SigLIP).
        layer_norm_epsilon: float.

    Call arguments:
        tokens: float (batch, tokens, width).
        padding_mask: optional bool (batch, tokens), True at the real
            tokens: the probe attends to those only.

    Returns:
        float (batch, width).

    Example:

    ```python
    head = AttentionPoolingHead(num_heads=4)
    head(np.zeros((2, 16, 64), "float32")).shape  # (2, 64)
    ```
    """

    def __init__(
        self, num_heads, mlp_ratio=4.0, activation="gelu_tanh", layer_norm_epsilon=1e-6, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"The width {width} is not divisible by num_heads={self.num_heads}.")
        self.head_dim = width // self.num_heads
        hidden = round(width * self.mlp_ratio)
        policy = self.dtype_policy
        # === Layers ===
        self.probe = self.add_weight(
            shape=(1, 1, width), initializer=keras.initializers.GlorotUniform(), name="probe"
        )
        self.in_projection = keras.layers.Dense(3 * width, dtype=policy, name="in_proj")
        self.out_projection = keras.layers.Dense(width, dtype=policy, name="out_proj")
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="layernorm"
        )
        self.mlp_hidden = keras.layers.Dense(
            hidden, activation=get_activation(self.activation), dtype=policy, name="fc1"
        )
        self.mlp_output = keras.layers.Dense(width, dtype=policy, name="fc2")
        for layer in (self.in_projection, self.out_projection, self.norm, self.mlp_hidden):
            layer.build((None, width))
        self.mlp_output.build((None, hidden))

    def call(self, tokens, padding_mask=None):
        batch, width = ops.shape(tokens)[0], tokens.shape[-1]
        kernel = ops.cast(self.in_projection.kernel, tokens.dtype)
        bias = ops.cast(self.in_projection.bias, tokens.dtype)
        probe = ops.reshape(ops.cast(self.probe, tokens.dtype), (1, width))
        query = ops.matmul(probe, kernel[:, :width]) + bias[:width]
        keys_values = ops.matmul(ops.reshape(tokens, (-1, width)), kernel[:, width:]) + bias[width:]
        keys_values = ops.reshape(keys_values, (batch, -1, 2, self.num_heads, self.head_dim))
        query = ops.broadcast_to(
            ops.reshape(query, (1, 1, self.num_heads, self.head_dim)),
            (batch, 1, self.num_heads, self.head_dim),
        )
        pooled = ops.dot_product_attention(
            query, keys_values[:, :, 0], keys_values[:, :, 1], mask=key_mask(padding_mask)
        )
        pooled = self.out_projection(ops.reshape(pooled, (batch, width)))
        return pooled + self.mlp_output(self.mlp_hidden(self.norm(pooled)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
