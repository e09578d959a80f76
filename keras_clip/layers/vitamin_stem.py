"""ViTamin's convolutional stem (Chen et al. 2024), as timm's `vitamin_*`
builds it (`MbConvStages`): the layers that turn pixels into the
Transformer's 16 x 16-pixel tokens."""

import keras
from keras import ops

# ViTamin's 2-D LayerNorms and MobileNet blocks use this epsilon.
STEM_EPSILON = 1e-6


def _padded(x):
    """One row and column of zeros on each side (PyTorch's padding=1)."""
    return ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _convolution(filters, kernel_size, strides, policy, name):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, dtype=policy, name=name)


def _layer_norm(policy, name):
    return keras.layers.LayerNormalization(epsilon=STEM_EPSILON, dtype=policy, name=name)


def _gelu(x):
    return keras.activations.gelu(x, approximate=False)


def average_pool_excluding_padding(x):
    """3 x 3 average pooling of stride 2 over `x` padded by one pixel, each
    window averaged over its pixels inside the image (PyTorch's
    `AvgPool2d(3, 2, padding=1, count_include_pad=False)`)."""
    total = ops.average_pool(_padded(x), 3, strides=2, padding="valid")
    inside = ops.average_pool(_padded(ops.ones_like(x[..., :1])), 3, strides=2, padding="valid")
    return total / inside


@keras.saving.register_keras_serializable(package="keras_clip")
class MbConvBlock(keras.layers.Layer):
    """ViTamin's pre-norm inverted-bottleneck block (timm's `MbConvLNBlock`).

    x -> LayerNorm (over channels) -> 1 x 1 convolution to 4 x the output
    width -> GELU -> 3 x 3 depthwise convolution (of stride `strides`) ->
    GELU -> 1 x 1 convolution to the output width, plus the shortcut: x
    itself, a 1 x 1 convolution where the width changes, and for stride 2
    an average pool (padding excluded) before it.

    Args:
        filters: int. Output channels (a multiple of 2: the hidden width,
            4 x filters, is a multiple of 8 as timm's `make_divisible` makes it).
        strides: 1 or 2.

    Example:

    ```python
    MbConvBlock(32, strides=2)(np.zeros((2, 16, 16, 16), "float32")).shape  # (2, 8, 8, 32)
    ```
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides}.")
        if (4 * filters) % 8:
            raise ValueError(f"4 * filters must be a multiple of 8, got filters={filters}.")
        self.filters = filters
        self.strides = strides

    def build(self, input_shape):
        policy, channels, hidden = self.dtype_policy, input_shape[-1], 4 * self.filters
        # === Layers ===
        self.shortcut = None
        if channels != self.filters:
            self.shortcut = _convolution(self.filters, 1, 1, policy, "shortcut")
            self.shortcut.build((None, None, None, channels))
        self.pre_norm = _layer_norm(policy, "pre_norm")
        self.expand = _convolution(hidden, 1, 1, policy, "conv1_1x1")
        self.depthwise = keras.layers.DepthwiseConv2D(
            3, strides=self.strides, dtype=policy, name="conv2_kxk"
        )
        self.project = _convolution(self.filters, 1, 1, policy, "conv3_1x1")
        self.pre_norm.build(input_shape)
        self.expand.build((None, None, None, channels))
        self.depthwise.build((None, None, None, hidden))
        self.project.build((None, None, None, hidden))

    def call(self, x):
        shortcut = average_pool_excluding_padding(x) if self.strides == 2 else x
        if self.shortcut is not None:
            shortcut = self.shortcut(shortcut)
        x = _gelu(self.expand(self.pre_norm(x)))
        x = _gelu(self.depthwise(_padded(x)))
        return self.project(x) + shortcut

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.strides == 2:
            height, width = [None if n is None else (n + 1) // 2 for n in (height, width)]
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class ViTaminStem(keras.layers.Layer):
    """Pixels to ViTamin's tokens: a 3 x 3 convolution of stride 2,
    LayerNorm and GELU, a 3 x 3 convolution; two stages of `MbConvBlock`s
    (the first block of each of stride 2); a LayerNorm and a 3 x 3
    convolution of stride 2 to `width` channels. 16 pixels per token side.

    Args:
        width: int. Output channels (the Transformer's width).
        stem_width: int. Channels of the first two convolutions.
        stage_widths: two ints. Channels of the two stages.
        stage_depths: two ints. Blocks in each stage.

    Call arguments:
        images: float (batch, height, width, 3); sides multiples of 16.

    Returns:
        float (batch, height / 16, width / 16, width).

    Example:

    ```python
    stem = ViTaminStem(48, stem_width=16, stage_widths=(16, 24), stage_depths=(2, 2))
    stem(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 2, 2, 48)
    ```
    """

    def __init__(self, width, stem_width, stage_widths, stage_depths, **kwargs):
        super().__init__(**kwargs)
        if len(stage_widths) != 2 or len(stage_depths) != 2 or min(stage_depths) < 1:
            raise ValueError(
                f"ViTamin's stem has two stages of at least one block; got widths "
                f"{stage_widths} and depths {stage_depths}."
            )
        self.width = width
        self.stem_width = stem_width
        self.stage_widths = tuple(stage_widths)
        self.stage_depths = tuple(stage_depths)

    def build(self, input_shape):
        policy = self.dtype_policy
        # === Layers ===
        self.stem_conv1 = _convolution(self.stem_width, 3, 2, policy, "stem_conv1")
        self.stem_norm = _layer_norm(policy, "stem_norm1")
        self.stem_conv2 = _convolution(self.stem_width, 3, 1, policy, "stem_conv2")
        self.stages = [
            [
                MbConvBlock(
                    filters, strides=2 if index == 0 else 1, dtype=policy, name=f"{s}_{index}"
                )
                for index in range(depth)
            ]
            for s, (filters, depth) in enumerate(zip(self.stage_widths, self.stage_depths))
        ]
        self.pool_norm = _layer_norm(policy, "pool_norm")
        self.pool_conv = _convolution(self.width, 3, 2, policy, "pool_proj")
        shape = (None, None, None, input_shape[-1])
        self.stem_conv1.build(shape)
        shape = (None, None, None, self.stem_width)
        for layer in (self.stem_norm, self.stem_conv2):
            layer.build(shape)
        for stage in self.stages:
            for block in stage:
                block.build(shape)
                shape = (None, None, None, block.filters)
        self.pool_norm.build(shape)
        self.pool_conv.build(shape)

    def call(self, images):
        x = _gelu(self.stem_norm(self.stem_conv1(_padded(images))))
        x = self.stem_conv2(_padded(x))
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return self.pool_conv(_padded(self.pool_norm(x)))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        sides = [None if n is None else n // 16 for n in (height, width)]
        return (batch, *sides, self.width)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "width": self.width,
                "stem_width": self.stem_width,
                "stage_widths": list(self.stage_widths),
                "stage_depths": list(self.stage_depths),
            }
        )
        return config
