"""SigLIP 2's NaFlex image tower: patches of any aspect ratio and count."""

import keras
from keras import ops

from keras_clip.encoders.siglip_vision import siglip_trunk
from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.layers.resized_positions import resized_position_embeddings
from keras_clip.utils.checks import check_patch_images
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config

PATCHES = "patches"
SPATIAL_SHAPES = "spatial_shapes"


@keras.saving.register_keras_serializable(package="keras_clip")
class NaFlexVisionTransformer(ExplicitSignatures, keras.Model):
    """SigLIP 2's NaFlex ViT (Tschannen et al. 2025), returning pooled features.

    Each image arrives as its own grid of patches (its aspect ratio kept,
    resized to at most a budget of patches: `keras_clip.data.naflex`),
    flattened to a sequence padded to a common length. A Dense layer embeds
    the flattened patches; the learned square grid of position embeddings is
    resized to each image's grid (`resized_position_embeddings`); pre-LayerNorm
    blocks attend only among real patches; a LayerNorm, then the
    attention-pooling head over the real patches. The output is the image
    embedding before normalisation (SigLIP has no separate image projection).

    Args:
        patch_size: int. Side of each square patch, in pixels.
        width: int. Transformer width.
        num_layers: int. Number of residual attention blocks.
        num_heads: int. Attention heads per block; divides width.
        position_grid_size: int. Side of the learned position-embedding
            grid (transformers' sqrt(num_patches); 16 for SigLIP 2).
        mlp_ratio: float. MLP hidden width relative to `width`.
        activation: str. "gelu_tanh" (SigLIP 2) or another activation name.
        layer_norm_epsilon: float (SigLIP 2: 1e-6).

    Call arguments:
        images: dict with "patches", float (batch, length,
            patch_size * patch_size * 3), normalised pixels of each patch in
            (row, column, channel) order, patches in row order then padding;
            and "spatial_shapes", int (batch, 2), each image's (rows, columns)
            of patches, rows * columns <= length.

    Returns:
        float (batch, width).

    Example:

    ```python
    encoder = NaFlexVisionTransformer(8, width=64, num_layers=2, num_heads=4)
    images = {"patches": np.zeros((2, 16, 192), "float32"),
              "spatial_shapes": np.array([[4, 4], [2, 7]], "int32")}
    encoder(images).shape  # (2, 64)
    ```
    """

    CONFIG_ATTRIBUTES = (
        "patch_size",
        "width",
        "num_layers",
        "num_heads",
        "position_grid_size",
        "mlp_ratio",
        "activation",
        "layer_norm_epsilon",
    )

    def __init__(
        self,
        patch_size,
        width,
        num_layers,
        num_heads,
        position_grid_size=16,
        mlp_ratio=4.0,
        activation="gelu_tanh",
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(width, num_layers, num_heads)
        if position_grid_size <= 0 or patch_size <= 0:
            raise ValueError(
                f"patch_size ({patch_size}) and position_grid_size "
                f"({position_grid_size}) must be positive."
            )
        keep_config(self, locals())
        self.patch_dim = patch_size * patch_size * 3

        # === Layers ===
        policy = self.dtype_policy
        self.patch_embedding = keras.layers.Dense(width, dtype=policy, name="patch_embedding")
        self.blocks, self.post_norm, self.head = siglip_trunk(self)

    def input_shapes(self, length=None):
        """The shapes of the `images` dict for patch sequences of `length`
        (None: the position grid's, position_grid_size**2)."""
        length = length or self.position_grid_size**2
        return {PATCHES: (None, length, self.patch_dim), SPATIAL_SHAPES: (None, 2)}

    def build(self, input_shape):
        self.positional_embedding = self.add_weight(
            shape=(self.position_grid_size**2, self.width),
            initializer=keras.initializers.RandomNormal(stddev=self.width**-0.5),
            name="positional_embedding",
        )
        self.patch_embedding.build((None, self.patch_dim))
        token_shape = (None, None, self.width)
        for block in self.blocks:
            block.build(token_shape)
        self.post_norm.build(token_shape)
        self.head.build(token_shape)

    def call(self, images):
        check_patch_images(images, self.patch_size)
        patches, spatial_shapes = images[PATCHES], images[SPATIAL_SHAPES]
        batch, length = ops.shape(patches)[0], ops.shape(patches)[1]
        x = self.patch_embedding(ops.reshape(patches, (-1, self.patch_dim)))
        x = ops.reshape(x, (batch, length, self.width))
        positions = resized_position_embeddings(
            self.positional_embedding, spatial_shapes, patches.shape[1] or length
        )
        x = x + ops.cast(positions, x.dtype)
        real_patches = ops.prod(spatial_shapes, axis=-1)[:, None]
        padding_mask = ops.arange(length)[None, :] < ops.cast(real_patches, "int32")
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask)
        return self.head(self.post_norm(x), padding_mask=padding_mask)

    def compute_output_shape(self, input_shape):
        return (input_shape[PATCHES][0], self.width)

    def get_config(self):
        return base_model_config(self)
