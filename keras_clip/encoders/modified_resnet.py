"""CLIP's modified ResNet image tower."""

import keras

from keras_clip.layers.attention_pool import AttentionPool2D
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_positive_ints
from keras_clip.utils.config import base_model_config


def _conv_norm(filters, kernel_size, policy, name, strides=1):
    """[zero padding,] bias-free convolution and batch normalisation."""
    stack = []
    if kernel_size > 1:
        stack.append(keras.layers.ZeroPadding2D(kernel_size // 2, dtype=policy))
    stack.append(
        keras.layers.Conv2D(
            filters, kernel_size, strides=strides, use_bias=False, dtype=policy, name=f"{name}_conv"
        )
    )
    stack.append(
        keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=policy, name=f"{name}_bn")
    )
    return stack


def _apply(stack, x, training):
    for layer in stack:
        if isinstance(layer, keras.layers.BatchNormalization):
            x = layer(x, training=training)
        else:
            x = layer(x)
    return x


@keras.saving.register_keras_serializable(package="keras_clip")
class Bottleneck(keras.layers.Layer):
    """CLIP's bottleneck block: strides by average pooling, never by a conv.

    1x1 conv -> 3x3 conv -> [avg-pool(stride)] -> 1x1 conv (4x planes), each
    with batch norm; the shortcut average-pools then projects when the shape
    changes (anti-aliased strided convolution, Zhang 2019).

    Args:
        planes: int. Width of the inner convolutions; outputs 4 * planes.
        stride: int. 1 or 2.

    Example:

    ```python
    Bottleneck(64, stride=2)(np.zeros((1, 56, 56, 64), "float32")).shape
    ```
    """

    expansion = 4

    def __init__(self, planes, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.planes = planes
        self.stride = stride

    def build(self, input_shape):
        policy = self.dtype_policy
        out = self.planes * self.expansion
        # === Layers ===
        self.main = (
            _conv_norm(self.planes, 1, policy, "1")
            + [keras.layers.ReLU(dtype=policy)]
            + _conv_norm(self.planes, 3, policy, "2")
            + [keras.layers.ReLU(dtype=policy)]
        )
        if self.stride > 1:
            self.main.append(keras.layers.AveragePooling2D(self.stride, dtype=policy))
        self.main += _conv_norm(out, 1, policy, "3")
        self.shortcut = []
        if self.stride > 1 or input_shape[-1] != out:
            if self.stride > 1:
                self.shortcut.append(keras.layers.AveragePooling2D(self.stride, dtype=policy))
            self.shortcut += _conv_norm(out, 1, policy, "downsample")
        for stack in (self.main, self.shortcut):
            shape = input_shape
            for layer in stack:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, x, training=None):
        residual = _apply(self.shortcut, x, training)
        return keras.ops.relu(_apply(self.main, x, training) + residual)

    def compute_output_shape(self, input_shape):
        spatial = [None if s is None else s // self.stride for s in input_shape[1:3]]
        return (input_shape[0], *spatial, self.planes * self.expansion)

    def get_config(self):
        config = super().get_config()
        config.update({"planes": self.planes, "stride": self.stride})
        return config


@keras.saving.register_keras_serializable(package="keras_clip")
class ModifiedResNet(keras.Model):
    """OpenAI CLIP's ResNet: three-conv stem, anti-aliased strides, attention pool.

    Stem: three 3x3 convolutions (the first strided) and a 2x2 average pool;
    four stages of `Bottleneck` blocks (widths w, 2w, 4w, 8w; outputs 32w
    channels at 1/32 resolution); `AttentionPool2D` in place of global
    average pooling.

    Args:
        stage_blocks: tuple of 4 ints. Blocks per stage (RN50: (3, 4, 6, 3)).
        width: int. Stem / first-stage width (RN50: 64).
        num_heads: int or None. Attention-pool heads (None: 32 * width / 64,
            as OpenAI).
        image_size: int. Input side; a multiple of 32.
        output_dim: int or None. Attention-pool output width (None: 32 * width).

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, output_dim).

    Example:

    ```python
    encoder = ModifiedResNet((1, 1, 1, 1), width=16, image_size=64)
    encoder(np.zeros((2, 64, 64, 3), "float32")).shape  # (2, 512)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = ("stage_blocks", "width", "num_heads", "image_size", "output_dim")

    def __init__(
        self,
        stage_blocks=(3, 4, 6, 3),
        width=64,
        num_heads=None,
        image_size=224,
        output_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.stage_blocks = tuple(stage_blocks)
        if len(self.stage_blocks) != 4:
            raise ValueError(f"stage_blocks must list 4 stages, got {self.stage_blocks}.")
        self.num_heads = num_heads or max(1, width * 32 // 64)
        check_positive_ints(
            width=width,
            image_size=image_size,
            num_heads=self.num_heads,
            **{f"stage_blocks[{i}]": n for i, n in enumerate(self.stage_blocks)},
        )
        if image_size % 32:
            raise ValueError(f"image_size={image_size} is not a multiple of 32.")
        self.width = width
        self.image_size = image_size
        self.output_dim = output_dim

        # === Layers ===
        policy = self.dtype_policy
        relu = lambda: keras.layers.ReLU(dtype=policy)  # noqa: E731
        self.stem = (
            _conv_norm(width // 2, 3, policy, "stem_1", strides=2)
            + [relu()]
            + _conv_norm(width // 2, 3, policy, "stem_2")
            + [relu()]
            + _conv_norm(width, 3, policy, "stem_3")
            + [relu()]
            + [keras.layers.AveragePooling2D(2, dtype=policy)]
        )
        self.stages = []
        for index, blocks in enumerate(self.stage_blocks):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            self.stages += [
                Bottleneck(
                    planes, stride if i == 0 else 1, dtype=policy, name=f"layer{index + 1}_{i}"
                )
                for i in range(blocks)
            ]
        self.attention_pool = AttentionPool2D(
            image_size // 32, self.num_heads, output_dim, dtype=policy, name="attnpool"
        )

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        shape = input_shape
        for layer in self.stem + self.stages + [self.attention_pool]:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, images, training=None):
        check_images(images, self.image_size)
        x = _apply(self.stem, images, training)
        for block in self.stages:
            x = block(x, training=training)
        return self.attention_pool(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim or self.width * 32)

    def get_config(self):
        return base_model_config(self)
