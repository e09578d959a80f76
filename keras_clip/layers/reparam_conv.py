"""Re-parameterisable convolutions (MobileOne, RepLKNet) and squeeze-excite.

`ReparamConv2D` trains as several parallel convolution branches, each
followed by BatchNorm (and optionally a BatchNorm of the input itself, the
identity branch), summed; at inference the branches fold into one biased
convolution that computes the same function (Ding et al., RepVGG 2021;
Vasu et al., MobileOne 2023). `folded=True` builds the single convolution;
`fold()` computes its kernel and bias from the branches.

Example:

```python
block = ReparamConv2D(32, 3, depthwise=True, branch_kernels=(3, 1), identity=True)
x = np.random.normal(size=(2, 8, 8, 32)).astype("float32")
y = block(x)  # inference: the BatchNorms use their moving statistics
folded = ReparamConv2D(32, 3, depthwise=True, folded=True)
folded.build(x.shape)
folded.set_weights(list(block.fold()))
keras.ops.max(keras.ops.abs(folded(x) - y))  # about 1e-6
```
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
class SqueezeExcite(keras.layers.Layer):
    """x * sigmoid(fc2(relu(fc1(mean over space of x)))), channels last.

    Args:
        reduced_channels: int. Width of the bottleneck.

    Example:

    ```python
    SqueezeExcite(4)(np.ones((2, 8, 8, 16), "float32")).shape  # (2, 8, 8, 16)
    ```
    """

    def __init__(self, reduced_channels, **kwargs):
        super().__init__(**kwargs)
        self.reduced_channels = reduced_channels

    def build(self, input_shape):
        channels = input_shape[-1]
        # === Layers ===
        self.reduce = keras.layers.Dense(self.reduced_channels, dtype=self.dtype_policy, name="fc1")
        self.expand = keras.layers.Dense(channels, dtype=self.dtype_policy, name="fc2")
        self.reduce.build((None, channels))
        self.expand.build((None, self.reduced_channels))

    def call(self, x):
        squeezed = ops.mean(x, axis=(1, 2))
        gate = ops.sigmoid(self.expand(ops.relu(self.reduce(squeezed))))
        return x * gate[:, None, None, :]

    def get_config(self):
        config = super().get_config()
        config.update({"reduced_channels": self.reduced_channels})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class ReparamConv2D(keras.layers.Layer):
    """Parallel convolution + BatchNorm branches (and an identity BatchNorm),
    summed, then optional squeeze-excite and GELU; or their folded form.

    Every convolution pads symmetrically by kernel // 2 (as PyTorch's), so
    the branches' outputs align at any stride. A strided 1 x 1 branch takes
    every strides-th pixel and convolves at stride 1 (the same function):
    PyTorch's CPU kernel for a strided 1 x 1 convolution of channels-last
    input with fewer than 16 channels writes past its workspace in the
    backward pass (uxlfoundation/oneDNN#6035, in torch 2.13: heap
    corruption, then a crash; `tests/test_open_clip_fastvit.py` trains
    through it on PyTorch).

    Args:
        filters: int. Output channels.
        kernel_size: int. The folded convolution's side (the largest branch).
        strides: int.
        depthwise: bool. Depthwise convolutions (filters a multiple of the
            input channels) instead of full ones.
        branch_kernels: the side of each convolution branch, e.g. (3, 1):
            MobileOne's k x k and 1 x 1 scale branches; (7, 3): RepLKNet's
            large and small kernels; () for the identity alone.
        identity: bool. A BatchNorm of the input as one more branch (needs
            filters == input channels and strides 1).
        se_channels: int or None. A `SqueezeExcite` of this bottleneck.
        activation: bool. Exact GELU at the end.
        folded: bool. Build the single biased convolution instead of the
            branches.

    Call arguments:
        x: float (batch, height, width, channels).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        depthwise=False,
        branch_kernels=None,
        identity=False,
        se_channels=None,
        activation=True,
        folded=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.depthwise = depthwise
        self.branch_kernels = list((kernel_size,) if branch_kernels is None else branch_kernels)
        self.identity = identity
        self.se_channels = se_channels
        self.activation = activation
        self.folded = folded

    def _convolution(self, kernel, channels, use_bias, name):
        padding = keras.layers.ZeroPadding2D(kernel // 2, dtype=self.dtype_policy)
        strides = 1 if kernel == 1 else self.strides  # 1 x 1: subsampled in call
        if self.depthwise:
            layer = keras.layers.DepthwiseConv2D(
                kernel,
                strides=strides,
                depth_multiplier=self.filters // channels,
                use_bias=use_bias,
                dtype=self.dtype_policy,
                name=name,
            )
        else:
            layer = keras.layers.Conv2D(
                self.filters,
                kernel,
                strides=strides,
                use_bias=use_bias,
                dtype=self.dtype_policy,
                name=name,
            )
        return padding, layer

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(
            epsilon=1e-5, momentum=0.9, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.depthwise and self.filters % channels:
            raise ValueError(
                f"A depthwise {self.filters}-filter convolution of {channels} channels."
            )
        if self.identity and (self.filters != channels or self.strides != 1):
            raise ValueError("The identity branch needs filters == channels and strides 1.")
        # === Layers ===
        self.branches, self.norms, self.identity_norm = [], [], None
        if self.folded:
            self.branches.append(self._convolution(self.kernel_size, channels, True, "reparam"))
        else:
            for index, kernel in enumerate(self.branch_kernels):
                self.branches.append(self._convolution(kernel, channels, False, f"conv_{index}"))
                self.norms.append(self._batch_norm(f"bn_{index}"))
            if self.identity:
                self.identity_norm = self._batch_norm("identity")
                self.identity_norm.build(input_shape)
        for index, (padding, convolution) in enumerate(self.branches):
            padded = padding.compute_output_shape(self._subsampled_shape(input_shape, convolution))
            convolution.build(padded)
            if self.norms:
                self.norms[index].build(convolution.compute_output_shape(padded))
        self.se = None
        if self.se_channels:
            self.se = SqueezeExcite(self.se_channels, dtype=self.dtype_policy, name="se")
            self.se.build((None, None, None, self.filters))

    def _subsampled(self, convolution):
        return convolution.kernel_size[0] == 1 and self.strides > 1

    def _subsampled_shape(self, shape, convolution):
        if not self._subsampled(convolution):
            return shape
        sides = [None if s is None else -(-s // self.strides) for s in shape[1:3]]
        return (shape[0], *sides, shape[3])

    def call(self, x, training=None):
        out = None
        for index, (padding, convolution) in enumerate(self.branches):
            source = x[:, :: self.strides, :: self.strides] if self._subsampled(convolution) else x
            y = convolution(padding(source))
            if self.norms:
                y = self.norms[index](y, training=training)
            out = y if out is None else out + y
        if self.identity_norm is not None:
            y = self.identity_norm(x, training=training)
            out = y if out is None else out + y
        if self.se is not None:
            out = self.se(out)
        if self.activation:
            out = keras.activations.gelu(out, approximate=False)
        return out

    def fold(self):
        """The folded convolution's (kernel, bias) as NumPy arrays, in Keras'
        layout, from the branches' weights and BatchNorm statistics."""
        if self.folded:
            convolution = self.branches[0][1]
            return ops.convert_to_numpy(convolution.kernel), ops.convert_to_numpy(convolution.bias)
        size = self.kernel_size
        kernel, bias = 0.0, 0.0
        for (_, convolution), norm in zip(self.branches, self.norms):
            k, b = _fuse(ops.convert_to_numpy(convolution.kernel), norm, self.depthwise)
            pad = (size - k.shape[0]) // 2
            kernel = kernel + np.pad(k, ((pad, pad), (pad, pad), (0, 0), (0, 0)))
            bias = bias + b
        if self.identity_norm is not None:
            eye = identity_kernel(size, self.filters, self.depthwise)
            k, b = _fuse(eye, self.identity_norm, self.depthwise)
            kernel, bias = kernel + k, bias + b
        return kernel.astype("float32"), np.asarray(bias, "float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "depthwise": self.depthwise,
                "branch_kernels": self.branch_kernels,
                "identity": self.identity,
                "se_channels": self.se_channels,
                "activation": self.activation,
                "folded": self.folded,
            }
        )
        return config


def identity_kernel(size, channels, depthwise):
    """A size x size kernel (Keras layout) that passes `channels` channels
    through: (size, size, channels, 1) depthwise, else (size, size,
    channels, channels)."""
    shape = (size, size, channels, 1) if depthwise else (size, size, channels, channels)
    kernel = np.zeros(shape, "float32")
    for c in range(channels):
        kernel[size // 2, size // 2, c, 0 if depthwise else c] = 1.0
    return kernel


def _fuse(kernel, norm, depthwise):
    """A convolution kernel (Keras layout) followed by BatchNorm `norm`
    (inference statistics), as one kernel and bias."""
    gamma, beta, mean, variance = (
        ops.convert_to_numpy(v).astype("float64")
        for v in (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance)
    )
    scale = gamma / np.sqrt(variance + norm.epsilon)
    if depthwise:  # output channel c * multiplier + j sits at kernel[..., c, j]
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    return kernel, beta - mean * scale
