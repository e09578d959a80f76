"""The Swin Transformer image tower (timm's `swin_*`, open_clip's
`swin_base_patch4_window7_224`)."""

import keras
from keras import ops

from keras_clip.layers.swin_block import PatchMerging
from keras_clip.layers.swin_block import SwinBlock
from keras_clip.utils.checks import check_images
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class SwinTransformer(keras.Model):
    """Swin: `patch_size` patches by a convolution and a LayerNorm, then
    stages of `SwinBlock`s (the first stage at `width` channels, each later
    one opened by `PatchMerging` to twice the channels at half the sides;
    windows of `window` positions, shifted by half a window on odd blocks
    where the map is larger than a window), a final LayerNorm, the mean over
    positions and a bias-free Dense to `output_dim` (open_clip's
    `timm_proj="linear"` head). This is timm's `SwinTransformer` as open_clip
    builds it.

    Args:
        image_size: int. Side of the square input images.
        patch_size: int.
        width: int. Channels of the first stage.
        depths: ints. Blocks per stage.
        num_heads: ints. Heads per stage.
        output_dim: int.
        window: int. Window side.
        mlp_ratio: float.
        layer_norm_epsilon: float.
        timm_model_name: str or None.

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, output_dim).

    Example:

    ```python
    encoder = SwinTransformer(32, 4, 16, (2, 2), (2, 4), output_dim=24, window=4)
    encoder(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 24)
    ```
    """

    CONFIG_ATTRIBUTES = (
        "image_size",
        "patch_size",
        "width",
        "depths",
        "num_heads",
        "output_dim",
        "window",
        "mlp_ratio",
        "layer_norm_epsilon",
        "timm_model_name",
    )

    def __init__(
        self,
        image_size,
        patch_size,
        width,
        depths,
        num_heads,
        output_dim,
        window=7,
        mlp_ratio=4.0,
        layer_norm_epsilon=1e-5,
        timm_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(
                f"depths {depths} and num_heads {num_heads} must name the same stages."
            )
        grid = image_size // patch_size
        if image_size % patch_size or grid % 2 ** (len(depths) - 1):
            raise ValueError(
                f"image_size={image_size} must be patch_size * 2**(stages - 1) * k "
                f"(patch_size={patch_size}, {len(depths)} stages)."
            )
        keep_config(self, locals())
        self.depths, self.num_heads = depths, num_heads

        # === Layers ===
        policy = self.dtype_policy
        self.patch_embedding = keras.layers.Conv2D(
            width, patch_size, strides=patch_size, dtype=policy, name="patch_embed_proj"
        )
        self.patch_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="patch_embed_norm"
        )
        self.stages = []
        for index, (depth, heads) in enumerate(zip(depths, num_heads)):
            side = grid // 2**index
            stage_window = min(window, side)  # timm: a map no larger than a window is one
            shift = stage_window // 2 if side > window else 0
            stage = [] if index == 0 else [
                PatchMerging(width * 2**index, layer_norm_epsilon, dtype=policy, name=f"downsample_{index}")
            ]  # fmt: skip
            stage += [
                SwinBlock(
                    heads,
                    stage_window,
                    shift if block % 2 else 0,
                    mlp_ratio,
                    layer_norm_epsilon,
                    dtype=policy,
                    name=f"stage_{index}_block_{block}",
                )
                for block in range(depth)
            ]
            self.stages.append(stage)
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="norm"
        )
        self.head = keras.layers.Dense(output_dim, use_bias=False, dtype=policy, name="head")

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        self.patch_embedding.build(input_shape)
        grid = self.image_size // self.patch_size
        self.patch_norm.build((None, self.width))
        channels = self.width
        for index, stage in enumerate(self.stages):
            side = grid // 2**index
            for layer in stage:
                if isinstance(layer, PatchMerging):
                    layer.build((None, 2 * side, 2 * side, channels))
                    channels = layer.filters
                else:
                    layer.build((None, side, side, channels))
        self.final_norm.build((None, channels))
        self.head.build((None, channels))

    def call(self, images):
        check_images(images, self.image_size)
        x = self.patch_norm(self.patch_embedding(images))
        for stage in self.stages:
            for layer in stage:
                x = layer(x)
        return self.head(ops.mean(self.final_norm(x), axis=(1, 2)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return base_model_config(self)
