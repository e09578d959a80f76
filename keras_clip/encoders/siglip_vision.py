"""SigLIP's Vision Transformer image tower."""

import keras
from keras import ops

from keras_clip.layers.attention_pooling_head import AttentionPoolingHead
from keras_clip.layers.transformer_block import transformer_blocks
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class SigLIPVisionTransformer(keras.Model):
    """SigLIP's ViT (Zhai et al. 2023), returning the pooled image features.

    A patch convolution with bias, learned position embeddings and no class
    token, pre-LayerNorm blocks (no LayerNorm before them), a LayerNorm on
    every token, then the attention-pooling head (`AttentionPoolingHead`).
    Its output is the image embedding before normalisation: SigLIP has no
    separate image projection.

    Args:
        image_size: int. Height and width of the (square) input images.
        patch_size: int. Side of each square patch: image_size // patch_size
            patches a side (a remainder of pixels is not seen, as in
            SigLIP's so400m-patch14-384).
        width: int. Transformer width.
        num_layers: int. Number of residual attention blocks.
        num_heads: int. Attention heads per block; divides width.
        mlp_ratio: float. MLP hidden width relative to `width`
            (intermediate_size / hidden_size).
        activation: str. "gelu_tanh" (SigLIP) or another activation name.
        layer_norm_epsilon: float (SigLIP: 1e-6).
        timm_model_name: str or None. timm's name of the tower, kept for
            open_clip's config when a model with it is written back (the
            NLLB-SigLIP CLIPs, `keras_clip.models.timm_siglip`).

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, width).

    Example:

    ```python
    encoder = SigLIPVisionTransformer(32, 8, width=64, num_layers=2, num_heads=4)
    encoder(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 64)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "image_size",
        "patch_size",
        "width",
        "num_layers",
        "num_heads",
        "mlp_ratio",
        "activation",
        "layer_norm_epsilon",
        "timm_model_name",
    )

    def __init__(
        self,
        image_size,
        patch_size,
        width,
        num_layers,
        num_heads,
        mlp_ratio=4.0,
        activation="gelu_tanh",
        layer_norm_epsilon=1e-6,
        timm_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(
            width, num_layers, num_heads, image_size=image_size, patch_size=patch_size
        )
        if image_size < patch_size:
            raise ValueError(f"image_size={image_size} is smaller than patch_size={patch_size}.")
        keep_config(self, locals())
        # As SigLIP's own towers: image_size // patch_size patches a side; the
        # last image_size % patch_size pixels are not seen (so400m-patch14 at
        # 384 px: 27 x 27 patches of the first 378 pixels).
        self.grid_size = image_size // patch_size

        # === Layers ===
        policy = self.dtype_policy
        self.patch_embedding = keras.layers.Conv2D(
            width, patch_size, strides=patch_size, dtype=policy, name="patch_embedding"
        )
        self.blocks, self.post_norm, self.head = siglip_trunk(self)

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        self.positional_embedding = self.add_weight(
            shape=(self.grid_size**2, self.width),
            initializer=keras.initializers.RandomNormal(stddev=self.width**-0.5),
            name="positional_embedding",
        )
        self.patch_embedding.build(input_shape)
        token_shape = (input_shape[0], self.grid_size**2, self.width)
        for block in self.blocks:
            block.build(token_shape)
        self.post_norm.build(token_shape)
        self.head.build(token_shape)

    def call(self, images):
        check_images(images, self.image_size)
        patches = self.patch_embedding(images)
        batch = ops.shape(patches)[0]
        x = ops.reshape(patches, (batch, self.grid_size**2, self.width))
        x = x + ops.cast(self.positional_embedding, x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.head(self.post_norm(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        return base_model_config(self)


def siglip_trunk(tower):
    """SigLIP's blocks, post-LayerNorm and attention-pooling head for
    `tower` (its width options and dtype policy), shared by the
    fixed-resolution and NaFlex towers (same names, same checkpoints)."""
    options = (tower.num_heads, tower.mlp_ratio, tower.activation, tower.layer_norm_epsilon)
    policy = tower.dtype_policy
    blocks = transformer_blocks(tower.num_layers, *options, policy, "layer_")
    post_norm = keras.layers.LayerNormalization(
        epsilon=tower.layer_norm_epsilon, dtype=policy, name="post_layernorm"
    )
    return blocks, post_norm, AttentionPoolingHead(*options, dtype=policy, name="head")
