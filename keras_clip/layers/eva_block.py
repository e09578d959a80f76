"""The residual block of EVA-01, EVA-02 and PE image towers.

One block covers the variants timm's `EvaBlock` / `EvaBlockPostNorm`
build for CLIP: attention with optional rotary position embeddings on the
patch tokens (the class token is left unrotated), an optional key bias, an
optional LayerNorm on the attended values before the output projection
(EVA-02's "sub-LN"), a GELU or SwiGLU MLP with an optional LayerNorm on its
hidden units, and pre-norm (x + f(norm(x))) or post-norm (x + norm(f(x)))
residuals.
"""

import keras
from keras import ops

from keras_clip.layers.relative_position_mlp import RelativePositionMLP
from keras_clip.layers.rotary import apply_rotary
from keras_clip.layers.transformer_block import layer_scales
from keras_clip.layers.transformer_block import scaled

MLPS = ("gelu", "swiglu", "geglu")


@keras.saving.register_keras_serializable(package="keras_clip")
class EVAAttention(keras.layers.Layer):
    """Self-attention with separate query/key/value projections and RoPE.

    Args:
        num_heads: int. Divides the width.
        key_bias: bool. Whether the key projection has a bias (PE's has;
            EVA's has none).
        qkv_bias: bool. False: no bias on the query, key or value
            projections (timm's `qkv_bias=False`, e.g. ViT-M/16 GAP).
        relative_position: None, or a dict of `RelativePositionMLP`
            arguments ("grid_size", "hidden_dim"): a learned relative-position
            bias on the logits (timm's `vit_relpos_*`).
        inner_norm: bool. LayerNorm on the attended values before the
            output projection (EVA-02's `scale_attn_inner`).
        num_prefix_tokens: int. Leading tokens (class token) left
            unrotated.
        layer_norm_epsilon: float.

    Call arguments:
        x: float (batch, tokens, width).
        rotary: None, or (sin, cos) tables for the tokens after the prefix
            (`keras_clip.layers.rotary.axial_rotary_tables`).

    Example:

    ```python
    attention = EVAAttention(num_heads=4)
    attention(np.zeros((2, 17, 64), "float32")).shape  # (2, 17, 64)
    ```
    """

    def __init__(
        self,
        num_heads,
        key_bias=True,
        inner_norm=False,
        num_prefix_tokens=1,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        relative_position=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads <= 0:
            raise ValueError(f"num_heads must be positive, got {num_heads}.")
        self.num_heads = num_heads
        self.key_bias = key_bias
        self.qkv_bias = qkv_bias
        self.relative_position = None if relative_position is None else dict(relative_position)
        self.inner_norm = inner_norm
        self.num_prefix_tokens = num_prefix_tokens
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(f"The width {width} is not divisible by num_heads={self.num_heads}.")
        self.head_dim = width // self.num_heads
        policy = self.dtype_policy
        # === Layers ===
        bias = self.qkv_bias
        self.query_dense = keras.layers.Dense(width, use_bias=bias, dtype=policy, name="q_proj")
        self.key_dense = keras.layers.Dense(
            width, use_bias=bias and self.key_bias, dtype=policy, name="k_proj"
        )
        self.value_dense = keras.layers.Dense(width, use_bias=bias, dtype=policy, name="v_proj")
        self.norm = None
        if self.inner_norm:
            self.norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=policy, name="norm"
            )
            self.norm.build((None, width))
        self.output_dense = keras.layers.Dense(width, dtype=policy, name="proj")
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build((None, width))
        self.rel_pos = None
        if self.relative_position is not None:
            self.rel_pos = RelativePositionMLP(
                num_heads=self.num_heads,
                num_prefix_tokens=self.num_prefix_tokens,
                dtype=policy,
                name="rel_pos",
                **self.relative_position,
            )
            self.rel_pos.build()

    def _heads(self, layer, flat, batch, length):
        return ops.reshape(layer(flat), (batch, length, self.num_heads, self.head_dim))

    def _rotate(self, x, rotary):
        prefix = self.num_prefix_tokens
        rotated = apply_rotary(x[:, prefix:], *rotary)
        return ops.concatenate([x[:, :prefix], rotated], axis=1) if prefix else rotated

    def call(self, x, rotary=None):
        batch, length, width = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        flat = ops.reshape(x, (-1, width))
        query = self._heads(self.query_dense, flat, batch, length)
        key = self._heads(self.key_dense, flat, batch, length)
        value = self._heads(self.value_dense, flat, batch, length)
        if rotary is not None:
            query, key = self._rotate(query, rotary), self._rotate(key, rotary)
        bias = None if self.rel_pos is None else ops.cast(self.rel_pos.bias(), query.dtype)
        attended = ops.dot_product_attention(query, key, value, bias=bias)
        attended = ops.reshape(attended, (-1, width))
        if self.norm is not None:
            attended = self.norm(attended)
        return ops.reshape(self.output_dense(attended), (batch, length, width))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_bias": self.key_bias,
                "inner_norm": self.inner_norm,
                "num_prefix_tokens": self.num_prefix_tokens,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qkv_bias": self.qkv_bias,
                "relative_position": self.relative_position,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class EVABlock(keras.layers.Layer):
    """An EVA / PE residual block: attention, then an MLP.

    Args:
        num_heads: int.
        mlp_hidden: int. Hidden units of the MLP.
        mlp: "gelu" (fc1, exact GELU, fc2), "swiglu" (silu(fc1_g) *
            fc1_x, then fc2) or "geglu" (ViTamin's: a LayerNorm of its
            own, then gelu(w0) * w1, then w2).
        mlp_norm: bool. LayerNorm on the MLP's hidden units (EVA-02's
            `scale_mlp`).
        post_norm: bool. x + norm(f(x)) (EVA-02-E) instead of x + f(norm(x)).
        key_bias, inner_norm, num_prefix_tokens, qkv_bias, relative_position:
            see `EVAAttention`.
        layer_norm_epsilon: float.
        layer_scale_init: float or None. LayerScale on each residual branch
            (timm's `init_values`); None for none.

    Call arguments:
        x: float (batch, tokens, width).
        rotary: None or (sin, cos), see `EVAAttention`.

    Example:

    ```python
    block = EVABlock(num_heads=4, mlp_hidden=170, mlp="swiglu", mlp_norm=True)
    block(np.zeros((2, 17, 64), "float32")).shape  # (2, 17, 64)
    ```
    """

    def __init__(
        self,
        num_heads,
        mlp_hidden,
        mlp="gelu",
        mlp_norm=False,
        post_norm=False,
        key_bias=True,
        inner_norm=False,
        num_prefix_tokens=1,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        layer_scale_init=None,
        relative_position=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mlp not in MLPS:
            raise ValueError(f"Unknown mlp {mlp!r}; expected one of {MLPS}.")
        self.num_heads = num_heads
        self.mlp_hidden = mlp_hidden
        self.mlp = mlp
        self.mlp_norm = mlp_norm
        self.post_norm = post_norm
        self.key_bias = key_bias
        self.inner_norm = inner_norm
        self.num_prefix_tokens = num_prefix_tokens
        self.layer_norm_epsilon = layer_norm_epsilon
        self.qkv_bias = qkv_bias
        self.layer_scale_init = layer_scale_init
        self.relative_position = relative_position

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        width = input_shape[-1]
        policy = self.dtype_policy
        # === Layers ===
        self.norm1 = self._layer_norm("norm1")
        self.attention = EVAAttention(
            self.num_heads,
            self.key_bias,
            self.inner_norm,
            self.num_prefix_tokens,
            self.layer_norm_epsilon,
            self.qkv_bias,
            self.relative_position,
            dtype=policy,
            name="attn",
        )
        self.norm2 = self._layer_norm("norm2")
        self.mlp_input_norm = None
        if self.mlp == "geglu":
            self.mlp_input_norm = self._layer_norm("mlp_input_norm")
            self.mlp_input_norm.build((None, width))
        if self.mlp in ("swiglu", "geglu"):
            self.gate_dense = keras.layers.Dense(self.mlp_hidden, dtype=policy, name="fc1_g")
            self.gate_dense.build((None, width))
        self.hidden_dense = keras.layers.Dense(self.mlp_hidden, dtype=policy, name="fc1")
        self.hidden_norm = self._layer_norm("mlp_norm") if self.mlp_norm else None
        self.output_dense = keras.layers.Dense(width, dtype=policy, name="fc2")
        self.attention.build(input_shape)
        self.norm1.build((None, width))
        self.norm2.build((None, width))
        self.hidden_dense.build((None, width))
        if self.hidden_norm is not None:
            self.hidden_norm.build((None, self.mlp_hidden))
        self.output_dense.build((None, self.mlp_hidden))
        self.attention_scale, self.mlp_scale = layer_scales(
            self, width, self.layer_scale_init, ("ls1", "ls2")
        )

    def _mlp(self, flat):
        if self.mlp_input_norm is not None:
            flat = self.mlp_input_norm(flat)
        hidden = self.hidden_dense(flat)
        if self.mlp == "swiglu":
            hidden = ops.silu(self.gate_dense(flat)) * hidden
        elif self.mlp == "geglu":
            hidden = keras.activations.gelu(self.gate_dense(flat), approximate=False) * hidden
        else:
            hidden = keras.activations.gelu(hidden, approximate=False)
        if self.hidden_norm is not None:
            hidden = self.hidden_norm(hidden)
        return self.output_dense(hidden)

    def call(self, x, rotary=None):
        if self.post_norm:
            attended = self.norm1(self.attention(x, rotary))
        else:
            attended = self.attention(self.norm1(x), rotary)
        x = x + scaled(attended, self.attention_scale)
        # The MLP runs on the 2-D (batch * tokens, width) view.
        flat = ops.reshape(x, (-1, x.shape[-1]))
        mlp = self.norm2(self._mlp(flat)) if self.post_norm else self._mlp(self.norm2(flat))
        flat = flat + scaled(mlp, self.mlp_scale)
        return ops.reshape(flat, ops.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_hidden": self.mlp_hidden,
                "mlp": self.mlp,
                "mlp_norm": self.mlp_norm,
                "post_norm": self.post_norm,
                "key_bias": self.key_bias,
                "inner_norm": self.inner_norm,
                "num_prefix_tokens": self.num_prefix_tokens,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qkv_bias": self.qkv_bias,
                "layer_scale_init": self.layer_scale_init,
                "relative_position": self.relative_position,
            }
        )
        return config
