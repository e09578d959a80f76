"""CLIP's pre-LayerNorm residual attention block."""

import keras
from keras import ops

from keras_clip.layers.activations import get_activation
from keras_clip.layers.attention import MultiHeadSelfAttention


@keras.saving.register_keras_serializable(package="keras_clip")
class TransformerBlock(keras.layers.Layer):
    """x + attn(ln_1(x)), then + mlp(ln_2(x)), as in OpenAI CLIP.

    Args:
        num_heads: int. Number of attention heads.
        mlp_ratio: float. Hidden width of the MLP relative to the model width.
        activation: str. "quick_gelu" (OpenAI's checkpoints) or any Keras
            activation name such as "gelu".
        use_causal_mask: bool. Causal self-attention (the text tower).
        layer_norm_epsilon: float.
        layer_scale_init: float or None. LayerScale: a learned per-channel
            scale on each residual branch, initialised to this (open_clip's
            `ls_init_value`); None for none.

    Call arguments:
        x: float (batch, length, width).
        padding_mask: optional bool (batch, length), True at the real
            tokens (see `MultiHeadSelfAttention`).

    Example:

    ```python
    block = TransformerBlock(num_heads=4)
    block(np.zeros((2, 10, 64), "float32")).shape  # (2, 10, 64)
    ```
    """

    def __init__(
        self,
        num_heads,
        mlp_ratio=4.0,
        activation="quick_gelu",
        use_causal_mask=False,
        layer_norm_epsilon=1e-5,
        layer_scale_init=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}.")
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.activation = activation
        self.use_causal_mask = use_causal_mask
        self.layer_norm_epsilon = layer_norm_epsilon
        self.layer_scale_init = layer_scale_init

    def build(self, input_shape):
        width = input_shape[-1]
        policy = self.dtype_policy
        # === Layers ===
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="ln_1"
        )
        self.attention = MultiHeadSelfAttention(
            self.num_heads, self.use_causal_mask, dtype=policy, name="attn"
        )
        self.mlp_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="ln_2"
        )
        self.mlp_hidden = keras.layers.Dense(
            round(width * self.mlp_ratio),
            activation=get_activation(self.activation),
            dtype=policy,
            name="c_fc",
        )
        self.mlp_output = keras.layers.Dense(width, dtype=policy, name="c_proj")
        for layer in (self.attention_norm, self.attention, self.mlp_norm, self.mlp_hidden):
            layer.build(input_shape)
        self.mlp_output.build(tuple(input_shape[:-1]) + (round(width * self.mlp_ratio),))
        self.attention_scale, self.mlp_scale = layer_scales(
            self, width, self.layer_scale_init, ("ls_1", "ls_2")
        )

    def call(self, x, padding_mask=None):
        attended = self.attention(self.attention_norm(x), padding_mask=padding_mask)
        return residual_mlp(self, x + scaled(attended, self.attention_scale))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "activation": self.activation,
                "use_causal_mask": self.use_causal_mask,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "layer_scale_init": self.layer_scale_init,
            }
        )
        return config


def layer_scales(layer, width, init, names):
    """LayerScale's two per-channel weights (attention branch, MLP branch)
    of `layer`, named `names`, each starting at `init`; (None, None) when
    `init` is None."""
    if init is None:
        return None, None
    constant = keras.initializers.Constant(init)
    return tuple(layer.add_weight(shape=(width,), initializer=constant, name=n) for n in names)


def residual_mlp(block, x):
    """x + mlp(mlp_norm(x)) of a pre-LayerNorm `block` (its `mlp_norm`,
    `mlp_hidden`, `mlp_output` and LayerScale `mlp_scale`), run on the 2-D
    (batch * length, width) view (see `MultiHeadSelfAttention`)."""
    flat = ops.reshape(x, (-1, x.shape[-1]))
    mlp = block.mlp_output(block.mlp_hidden(block.mlp_norm(flat)))
    flat = flat + scaled(mlp, block.mlp_scale)
    return ops.reshape(flat, ops.shape(x))


def scaled(x, scale):
    """`x` times a LayerScale weight (`layer_scales`), or `x` for None."""
    return x if scale is None else x * ops.cast(scale, x.dtype)


def transformer_blocks(
    num_layers,
    num_heads,
    mlp_ratio,
    activation,
    layer_norm_epsilon,
    dtype,
    prefix,
    causal=False,
    layer_scale_init=None,
):
    """`num_layers` TransformerBlocks named `{prefix}{i}`, a tower's stack."""
    return [
        TransformerBlock(
            num_heads,
            mlp_ratio,
            activation,
            use_causal_mask=causal,
            layer_norm_epsilon=layer_norm_epsilon,
            layer_scale_init=layer_scale_init,
            dtype=dtype,
            name=f"{prefix}{i}",
        )
        for i in range(num_layers)
    ]
