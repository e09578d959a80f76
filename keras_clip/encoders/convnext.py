"""ConvNeXt image towers, as LAION's ConvNeXt CLIPs use them."""

import keras
from keras import ops

from keras_clip.layers.convnext_block import ConvNeXtBlock
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_positive_ints
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config

HEADS = ("linear", "mlp")


@keras.saving.register_keras_serializable(package="keras_clip")
class ConvNeXt(keras.Model):
    """timm's ConvNeXt, average-pooled and projected to the joint space.

    A 4 x 4 stride-4 convolution and LayerNorm (the stem); four stages of
    `ConvNeXtBlock`s, each stage after the first entered by a LayerNorm and
    a 2 x 2 stride-2 convolution; the mean over space, a LayerNorm (timm's
    head norm), and open_clip's projection head: a Dense ("linear") or a
    GELU MLP of twice the output width ("mlp").

    Args:
        image_size: int. Side of the square input images; a multiple of 32.
        depths: four ints, blocks per stage.
        dims: four ints, channels per stage.
        output_dim: int. Width of the projection (the joint space).
        head: "linear" or "mlp".
        head_bias: bool. A bias on the projection's last Dense.
        layer_norm_epsilon: float.
        timm_model_name: str or None. The timm architecture this tower
            reproduces (written back by `save_pretrained`).

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, output_dim).

    Example:

    ```python
    encoder = ConvNeXt(64, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), output_dim=16)
    encoder(np.zeros((2, 64, 64, 3), "float32")).shape  # (2, 16)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "image_size",
        "depths",
        "dims",
        "output_dim",
        "head",
        "head_bias",
        "layer_norm_epsilon",
        "timm_model_name",
    )

    def __init__(
        self,
        image_size,
        depths,
        dims,
        output_dim,
        head="linear",
        head_bias=False,
        layer_norm_epsilon=1e-6,
        timm_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        depths, dims = list(depths), list(dims)
        check_positive_ints(image_size=image_size, output_dim=output_dim)
        if len(depths) != 4 or len(dims) != 4:
            raise ValueError(f"ConvNeXt has four stages; got depths={depths}, dims={dims}.")
        if image_size % 32:
            raise ValueError(f"image_size={image_size} is not a multiple of 32.")
        if head not in HEADS:
            raise ValueError(f"Unknown head {head!r}; expected one of {HEADS}.")
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.stem = keras.layers.Conv2D(dims[0], 4, strides=4, dtype=policy, name="stem_conv")
        self.stem_norm = self._layer_norm("stem_norm")
        self.downsample_norms, self.downsamples, self.stages = [], [], []
        for index, (depth, width) in enumerate(zip(depths, dims)):
            if index:
                self.downsample_norms.append(self._layer_norm(f"downsample_norm_{index}"))
                self.downsamples.append(
                    keras.layers.Conv2D(
                        width, 2, strides=2, dtype=policy, name=f"downsample_conv_{index}"
                    )
                )
            self.stages.append(
                [
                    ConvNeXtBlock(layer_norm_epsilon, dtype=policy, name=f"stage_{index}_{i}")
                    for i in range(depth)
                ]
            )
        self.head_norm = self._layer_norm("head_norm")
        self.head_hidden = None
        if head == "mlp":
            self.head_hidden = keras.layers.Dense(2 * output_dim, dtype=policy, name="head_fc1")
        self.projection = keras.layers.Dense(
            output_dim, use_bias=head_bias, dtype=policy, name="head_proj"
        )

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        side = self.image_size // 4
        self.stem.build(input_shape)
        self.stem_norm.build((None, self.dims[0]))
        for index, blocks in enumerate(self.stages):
            if index:
                self.downsample_norms[index - 1].build((None, self.dims[index - 1]))
                self.downsamples[index - 1].build((None, side, side, self.dims[index - 1]))
                side //= 2
            for block in blocks:
                block.build((None, side, side, self.dims[index]))
        self.head_norm.build((None, self.dims[-1]))
        width = self.dims[-1]
        if self.head_hidden is not None:
            self.head_hidden.build((None, width))
            width = 2 * self.output_dim
        self.projection.build((None, width))

    def call(self, images):
        check_images(images, self.image_size)
        x = self.stem_norm(self.stem(images))
        for index, blocks in enumerate(self.stages):
            if index:
                x = self.downsamples[index - 1](self.downsample_norms[index - 1](x))
            for block in blocks:
                x = block(x)
        x = self.head_norm(ops.mean(x, axis=(1, 2)))
        if self.head_hidden is not None:
            x = keras.activations.gelu(self.head_hidden(x), approximate=False)
        return self.projection(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return base_model_config(self)
