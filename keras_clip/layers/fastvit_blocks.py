"""FastViT's blocks (Vasu et al. 2023), as timm's `fastvit` builds them for
MobileCLIP: the RepMixer token mixer, the convolutional MLP, conditional
position encoding, and the RepMixer and attention blocks. Each
re-parameterisable part has a `folded` form and a `fold()` giving its
weights (see `keras_clip.layers.reparam_conv`)."""

import keras
from keras import ops

from keras_clip.layers.reparam_conv import ReparamConv2D
from keras_clip.layers.reparam_conv import identity_kernel


@keras.saving.register_keras_serializable(package="keras_clip")
class RepMixer(keras.layers.Layer):
    """x + gamma * (mixer(x) - norm(x)), both depthwise `ReparamConv2D`s;
    folded, one depthwise convolution.

    Args:
        kernel_size: int.
        folded: bool.

    Example:

    ```python
    RepMixer()(np.zeros((2, 8, 8, 16), "float32")).shape  # (2, 8, 8, 16)
    ```
    """

    def __init__(self, kernel_size=3, folded=False, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.folded = folded

    def build(self, input_shape):
        channels, size, policy = input_shape[-1], self.kernel_size, self.dtype_policy
        # === Layers ===
        if self.folded:
            self.convolution = ReparamConv2D(
                channels, size, depthwise=True, activation=False, folded=True, dtype=policy,
                name="reparam",
            )  # fmt: skip
            self.convolution.build(input_shape)
            return
        self.norm = ReparamConv2D(
            channels, size, depthwise=True, branch_kernels=(), identity=True, activation=False,
            dtype=policy, name="norm",
        )  # fmt: skip
        self.mixer = ReparamConv2D(
            channels, size, depthwise=True, branch_kernels=(size, 1), identity=True,
            activation=False, dtype=policy, name="mixer",
        )  # fmt: skip
        self.gamma = self.add_weight(
            shape=(channels,), initializer=keras.initializers.Constant(1e-5), name="gamma"
        )
        self.norm.build(input_shape)
        self.mixer.build(input_shape)

    def call(self, x, training=None):
        if self.folded:
            return self.convolution(x)
        mixed = self.mixer(x, training=training) - self.norm(x, training=training)
        return x + ops.cast(self.gamma, x.dtype) * mixed

    def fold(self):
        if self.folded:
            return self.convolution.fold()
        (mixer_kernel, mixer_bias), (norm_kernel, norm_bias) = self.mixer.fold(), self.norm.fold()
        gamma = ops.convert_to_numpy(self.gamma)
        channels = gamma.shape[0]
        kernel = identity_kernel(self.kernel_size, channels, depthwise=True) + gamma[:, None] * (
            mixer_kernel - norm_kernel
        )
        return kernel.astype("float32"), (gamma * (mixer_bias - norm_bias)).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "folded": self.folded})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class ConditionalPositionEncoding(keras.layers.Layer):
    """x + depthwise_conv(x) (FastViT's RepCPE); folded, one convolution.

    Example:

    ```python
    ConditionalPositionEncoding()(np.zeros((2, 8, 8, 16), "float32")).shape  # (2, 8, 8, 16)
    ```
    """

    def __init__(self, kernel_size=7, folded=False, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.folded = folded

    def build(self, input_shape):
        # === Layers ===
        self.padding = keras.layers.ZeroPadding2D(self.kernel_size // 2, dtype=self.dtype_policy)
        self.convolution = keras.layers.DepthwiseConv2D(
            self.kernel_size, dtype=self.dtype_policy, name="reparam" if self.folded else "pos_enc"
        )
        self.convolution.build(self.padding.compute_output_shape(input_shape))

    def call(self, x):
        y = self.convolution(self.padding(x))
        return y if self.folded else x + y

    def fold(self):
        kernel = ops.convert_to_numpy(self.convolution.kernel)
        bias = ops.convert_to_numpy(self.convolution.bias)
        if not self.folded:
            kernel = kernel + identity_kernel(self.kernel_size, kernel.shape[2], depthwise=True)
        return kernel, bias

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size, "folded": self.folded})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class ConvolutionalMLP(keras.layers.Layer):
    """7 x 7 depthwise convolution + BatchNorm, then a 1 x 1 GELU MLP.

    Example:

    ```python
    ConvolutionalMLP(48)(np.zeros((2, 8, 8, 16), "float32")).shape  # (2, 8, 8, 16)
    ```
    """

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        channels, policy = input_shape[-1], self.dtype_policy
        # === Layers ===
        self.convolution = ReparamConv2D(
            channels, 7, depthwise=True, activation=False, dtype=policy, name="conv"
        )
        self.fc1 = keras.layers.Dense(self.hidden, dtype=policy, name="fc1")
        self.fc2 = keras.layers.Dense(channels, dtype=policy, name="fc2")
        self.convolution.build(input_shape)
        self.fc1.build((None, channels))
        self.fc2.build((None, self.hidden))

    def call(self, x, training=None):
        y = self.convolution(x, training=training)
        y = keras.activations.gelu(self.fc1(y), approximate=False)
        return self.fc2(y)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden": self.hidden})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class FastViTBlock(keras.layers.Layer):
    """A RepMixer block (x = mixer(x); x + gamma * mlp(x)) or an attention
    block (x + gamma1 * attention(norm(x)); x + gamma2 * mlp(x)).

    Args:
        mixer: "repmixer" or "attention".
        mlp_hidden: int.
        norm: "batch" or "layer": the attention block's norm.
        head_dim: int. Features per attention head.
        folded: bool. The RepMixer's folded form.

    Example:

    ```python
    FastViTBlock("attention", 64)(np.zeros((2, 4, 4, 32), "float32")).shape  # (2, 4, 4, 32)
    ```
    """

    def __init__(
        self, mixer, mlp_hidden, norm="batch", head_dim=32, folded=False, **kwargs
    ):  # fmt: skip
        super().__init__(**kwargs)
        self.mixer = mixer
        self.mlp_hidden = mlp_hidden
        self.norm = norm
        self.head_dim = head_dim
        self.folded = folded

    def build(self, input_shape):
        channels, policy = input_shape[-1], self.dtype_policy
        constant = keras.initializers.Constant(1e-5)
        # === Layers ===
        self.mlp = ConvolutionalMLP(self.mlp_hidden, dtype=policy, name="mlp")
        self.mlp.build(input_shape)
        self.gamma_mlp = self.add_weight(shape=(channels,), initializer=constant, name="gamma")
        if self.mixer == "repmixer":
            self.token_mixer = RepMixer(folded=self.folded, dtype=policy, name="token_mixer")
            self.token_mixer.build(input_shape)
            return
        if self.norm == "batch":
            self.norm_layer = keras.layers.BatchNormalization(
                epsilon=1e-5, momentum=0.9, dtype=policy, name="norm"
            )
        else:
            self.norm_layer = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=policy, name="norm"
            )
        self.norm_layer.build(input_shape)
        self.qkv = keras.layers.Dense(3 * channels, use_bias=False, dtype=policy, name="qkv")
        self.proj = keras.layers.Dense(channels, dtype=policy, name="proj")
        self.qkv.build((None, channels))
        self.proj.build((None, channels))
        self.gamma_attention = self.add_weight(
            shape=(channels,), initializer=constant, name="gamma_attention"
        )

    def _attention(self, x):
        shape, channels = ops.shape(x), x.shape[-1]
        heads = channels // self.head_dim
        qkv = ops.reshape(
            self.qkv(ops.reshape(x, (-1, channels))), (shape[0], -1, 3, heads, self.head_dim)
        )
        attended = ops.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
        return ops.reshape(self.proj(ops.reshape(attended, (-1, channels))), shape)

    def call(self, x, training=None):
        if self.mixer == "repmixer":
            x = self.token_mixer(x, training=training)
        else:
            normed = (
                self.norm_layer(x, training=training)
                if self.norm == "batch"
                else (self.norm_layer(x))
            )
            x = x + ops.cast(self.gamma_attention, x.dtype) * self._attention(normed)
        return x + ops.cast(self.gamma_mlp, x.dtype) * self.mlp(x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mixer": self.mixer,
                "mlp_hidden": self.mlp_hidden,
                "norm": self.norm,
                "head_dim": self.head_dim,
                "folded": self.folded,
            }
        )
        return config
