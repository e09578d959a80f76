"""ConvNeXt's residual block (Liu et al. 2022), as timm's `ConvNeXtBlock`."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
class ConvNeXtBlock(keras.layers.Layer):
    """x + gamma * mlp(norm(depthwise_conv(x))), channels last.

    A 7 x 7 depthwise convolution (biased, "same" padding), LayerNorm over
    the channels, a 4x MLP with exact GELU, and a learned per-channel scale
    (LayerScale, `gamma`).

    Args:
        layer_norm_epsilon: float (timm: 1e-6; 1e-5 for convnext_xxlarge).
        kernel_size: int. The depthwise convolution's side.
        mlp_ratio: float.
        layer_scale_init: float. gamma's initial value.

    Call arguments:
        x: float (batch, height, width, channels).

    Example:

    ```python
    block = ConvNeXtBlock()
    block(np.zeros((2, 8, 8, 32), "float32")).shape  # (2, 8, 8, 32)
    ```
    """

    def __init__(
        self, layer_norm_epsilon=1e-6, kernel_size=7, mlp_ratio=4.0, layer_scale_init=1e-6, **kwargs
    ):
        super().__init__(**kwargs)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_size = kernel_size
        self.mlp_ratio = mlp_ratio
        self.layer_scale_init = layer_scale_init

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = round(channels * self.mlp_ratio)
        policy = self.dtype_policy
        # === Layers ===
        self.depthwise = keras.layers.DepthwiseConv2D(
            self.kernel_size, padding="same", dtype=policy, name="conv_dw"
        )
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy, name="norm"
        )
        self.mlp_hidden = keras.layers.Dense(hidden, dtype=policy, name="fc1")
        self.mlp_output = keras.layers.Dense(channels, dtype=policy, name="fc2")
        self.gamma = self.add_weight(
            shape=(channels,),
            initializer=keras.initializers.Constant(self.layer_scale_init),
            name="gamma",
        )
        self.depthwise.build(input_shape)
        self.norm.build((None, channels))
        self.mlp_hidden.build((None, channels))
        self.mlp_output.build((None, hidden))

    def call(self, x):
        channels = x.shape[-1]
        y = ops.reshape(self.depthwise(x), (-1, channels))
        y = keras.activations.gelu(self.mlp_hidden(self.norm(y)), approximate=False)
        y = self.mlp_output(y) * ops.cast(self.gamma, y.dtype)
        return x + ops.reshape(y, ops.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_size": self.kernel_size,
                "mlp_ratio": self.mlp_ratio,
                "layer_scale_init": self.layer_scale_init,
            }
        )
        return config
