"""The EVA-family image tower: EVA-01, EVA-02, Meta's PE-Core, and timm's
ViT variants open_clip uses (MobileCLIP's, ViT-M/16, ViTamin)."""

import keras
from keras import ops

from keras_clip.layers.attention_pooling_head import AttentionPoolingHead
from keras_clip.layers.convolutional_stem import ConvolutionalStem
from keras_clip.layers.eva_block import EVABlock
from keras_clip.layers.rotary import INDEXINGS
from keras_clip.layers.rotary import axial_rotary_tables
from keras_clip.layers.vitamin_stem import ViTaminStem
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config

POOLINGS = ("token", "map", "avg")
STEMS = ("patch", "convolutional", "vitamin")


@keras.saving.register_keras_serializable(package="keras_clip")
class EVAVisionTransformer(keras.Model):
    """A ViT with EVA's blocks, projected to the joint space by its head.

    Patch convolution (or MobileCLIP's `ConvolutionalStem`, or ViTamin's
    `ViTaminStem`), an optional
    class token, learned absolute position embeddings (on the class token
    too, or on the patches only), an optional LayerNorm before the blocks
    (PE), `EVABlock`s
    with optional 2-D rotary embeddings on the patch tokens, a final
    LayerNorm, pooling by the class token ("token", EVA) or by an
    attention-pooling head ("map", PE), and a biased Dense to `output_dim`
    (timm's classifier head, which open_clip uses as the projection).
    This is the computation of timm's `Eva` as open_clip builds it for
    `EVA01-*`, `EVA02-*` and `PE-Core-*`, and of timm's plain
    `VisionTransformer` for MobileCLIP's ViTs (an EVA tower without rotary
    embeddings, SwiGLU or sub-LN); `keras_clip.models.timm_eva` gives the
    arguments of each timm name.

    Args:
        image_size: int. Side of the square input images.
        patch_size: int. Divides image_size.
        width: int. Transformer width.
        num_layers: int.
        num_heads: int. Divides width.
        output_dim: int. Width of the head's output (the joint space).
        mlp_hidden: int. Hidden units of each block's MLP.
        mlp: "gelu" or "swiglu" (see `EVABlock`).
        mlp_norm: bool. LayerNorm inside the MLP (EVA-02).
        inner_norm: bool. LayerNorm before the attention output (EVA-02).
        key_bias: bool. A bias on the key projection (PE).
        post_norm: bool. Post-norm residuals (EVA-02-E).
        class_token: bool.
        patch_bias: bool. A bias on the patch convolution.
        pre_norm: bool. LayerNorm before the blocks (PE).
        stem: "patch" (one convolution), "convolutional"
            (`ConvolutionalStem`: patch_size 16) or "vitamin" (`ViTaminStem`:
            patch_size 16).
        vitamin_stem: with stem="vitamin": dict of `ViTaminStem`'s
            "stem_width", "stage_widths" and "stage_depths".
        class_position: bool. Whether the position embeddings cover the
            class token (False: timm's `no_embed_class`).
        rotary: None, or a dict of `axial_rotary_tables` settings
            ("reference_grid", "offset", "indexing"): rotary embeddings in
            every block.
        pooling: "token", "map" or "avg" (the mean of the patch tokens
            after the final LayerNorm, timm's `global_pool="avg"`).
        norm_after_pool: bool. With pooling="avg": the final LayerNorm on
            the mean instead of on the tokens (timm's `fc_norm`, ViTamin).
        pool_heads: int. Heads of the "map" pooling head.
        pool_mlp_ratio: float. MLP ratio of the "map" pooling head.
        layer_norm_epsilon: float (EVA: 1e-6, PE: 1e-5).
        qkv_bias: bool. Biases on the query, key and value projections.
        layer_scale_init: float or None. LayerScale in every block.
        head_bias: bool. A bias on the head (timm's classifier head has
            one; open_clip's `timm_proj="linear"` head has none).
        absolute_positions: bool. Learned absolute position embeddings
            (False: none, timm's `vit_relpos_*`).
        relative_position_hidden: int or None. A `RelativePositionMLP` of
            this hidden width in every block's attention (timm's
            `rel_pos_dim`); None for none.
        timm_model_name: str or None. The timm architecture this tower
            reproduces (written back by `save_pretrained`).

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, output_dim).

    Example:

    ```python
    encoder = EVAVisionTransformer(
        32, 8, width=64, num_layers=2, num_heads=4, output_dim=32, mlp_hidden=170,
        mlp="swiglu", rotary={"reference_grid": 16},
    )
    encoder(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 32)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "image_size",
        "patch_size",
        "width",
        "num_layers",
        "num_heads",
        "output_dim",
        "mlp_hidden",
        "mlp",
        "mlp_norm",
        "inner_norm",
        "key_bias",
        "post_norm",
        "class_token",
        "patch_bias",
        "pre_norm",
        "stem",
        "vitamin_stem",
        "class_position",
        "rotary",
        "pooling",
        "norm_after_pool",
        "pool_heads",
        "pool_mlp_ratio",
        "layer_norm_epsilon",
        "qkv_bias",
        "layer_scale_init",
        "head_bias",
        "absolute_positions",
        "relative_position_hidden",
        "timm_model_name",
    )

    def __init__(
        self,
        image_size,
        patch_size,
        width,
        num_layers,
        num_heads,
        output_dim,
        mlp_hidden=None,
        mlp="gelu",
        mlp_norm=False,
        inner_norm=False,
        key_bias=False,
        post_norm=False,
        class_token=True,
        patch_bias=True,
        pre_norm=False,
        stem="patch",
        vitamin_stem=None,
        class_position=True,
        rotary=None,
        pooling="token",
        norm_after_pool=False,
        pool_heads=8,
        pool_mlp_ratio=4.0,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        layer_scale_init=None,
        head_bias=True,
        absolute_positions=True,
        relative_position_hidden=None,
        timm_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mlp_hidden = mlp_hidden or 4 * width
        check_transformer_shape(
            width,
            num_layers,
            num_heads,
            image_size=image_size,
            patch_size=patch_size,
            output_dim=output_dim,
            mlp_hidden=mlp_hidden,
        )
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} is not a multiple of patch_size={patch_size}."
            )
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of {POOLINGS}.")
        if stem not in STEMS:
            raise ValueError(f"Unknown stem {stem!r}; expected one of {STEMS}.")
        if stem in ("convolutional", "vitamin") and patch_size != 16:
            raise ValueError(f"stem={stem!r} makes 16-pixel patches, not {patch_size}.")
        if (stem == "vitamin") != (vitamin_stem is not None):
            raise ValueError('vitamin_stem is given with stem="vitamin", and only then.')
        if norm_after_pool and pooling != "avg":
            raise ValueError('norm_after_pool needs pooling="avg".')
        vitamin_stem = None if vitamin_stem is None else dict(vitamin_stem)
        if pooling == "token" and not class_token:
            raise ValueError('pooling="token" needs class_token=True.')
        rotary = None if rotary is None else dict(rotary)
        if rotary is not None and rotary.get("indexing", "ij") not in INDEXINGS:
            raise ValueError(f"Unknown rotary indexing {rotary['indexing']!r}.")
        keep_config(self, locals())
        self.grid_size = image_size // patch_size
        self.num_prefix_tokens = int(class_token)

        # === Layers ===
        policy = self.dtype_policy
        if stem == "convolutional":
            self.patch_embedding = ConvolutionalStem(width, dtype=policy, name="backbone")
        elif stem == "vitamin":
            self.patch_embedding = ViTaminStem(width, **vitamin_stem, dtype=policy, name="backbone")
        else:
            self.patch_embedding = keras.layers.Conv2D(
                width,
                patch_size,
                strides=patch_size,
                use_bias=patch_bias,
                dtype=policy,
                name="proj",
            )
        self.pre_layer_norm = self._layer_norm("norm_pre") if pre_norm else None
        self.blocks = [
            EVABlock(
                num_heads,
                mlp_hidden,
                mlp=mlp,
                mlp_norm=mlp_norm,
                post_norm=post_norm,
                key_bias=key_bias,
                inner_norm=inner_norm,
                num_prefix_tokens=self.num_prefix_tokens,
                layer_norm_epsilon=layer_norm_epsilon,
                qkv_bias=qkv_bias,
                layer_scale_init=layer_scale_init,
                relative_position=None
                if relative_position_hidden is None
                else {"grid_size": self.grid_size, "hidden_dim": relative_position_hidden},
                dtype=policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = self._layer_norm("fc_norm" if norm_after_pool else "norm")
        self.pool = None
        if pooling == "map":
            self.pool = AttentionPoolingHead(
                pool_heads,
                pool_mlp_ratio,
                "gelu",
                layer_norm_epsilon,
                dtype=policy,
                name="attn_pool",
            )
        self.head = keras.layers.Dense(output_dim, use_bias=head_bias, dtype=policy, name="head")
        self.rotary_tables = None
        if rotary is not None:
            self.rotary_tables = axial_rotary_tables(self.grid_size, width // num_heads, **rotary)

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        tokens = self.grid_size**2 + self.num_prefix_tokens
        positions = tokens if self.class_position else self.grid_size**2
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        if self.class_token:
            self.class_embedding = self.add_weight(
                shape=(self.width,), initializer=initializer, name="cls_token"
            )
        self.positional_embedding = None
        if self.absolute_positions:
            self.positional_embedding = self.add_weight(
                shape=(positions, self.width), initializer=initializer, name="pos_embed"
            )
        self.patch_embedding.build(input_shape)
        token_shape = (input_shape[0], tokens, self.width)
        for layer in (self.pre_layer_norm, *self.blocks, self.pool):
            if layer is not None:
                layer.build(token_shape)
        self.final_norm.build((None, self.width))
        self.head.build((None, self.width))

    def call(self, images, training=None):
        check_images(images, self.image_size)
        if self.stem == "convolutional":
            patches = self.patch_embedding(images, training=training)
        else:
            patches = self.patch_embedding(images)
        batch = ops.shape(patches)[0]
        x = ops.reshape(patches, (batch, self.grid_size**2, self.width))
        positions = None
        if self.positional_embedding is not None:
            positions = ops.cast(self.positional_embedding, x.dtype)
        if positions is not None and not self.class_position:
            x = x + positions
        if self.class_token:
            class_token = ops.cast(self.class_embedding, x.dtype)
            x = ops.concatenate([ops.broadcast_to(class_token, (batch, 1, self.width)), x], 1)
        if positions is not None and self.class_position:
            x = x + positions
        if self.pre_layer_norm is not None:
            x = self.pre_layer_norm(x)
        rotary = None
        if self.rotary_tables is not None:
            rotary = tuple(ops.convert_to_tensor(table) for table in self.rotary_tables)
        for block in self.blocks:
            x = block(x, rotary)
        if self.norm_after_pool:
            return self.head(self.final_norm(ops.mean(x[:, self.num_prefix_tokens :], axis=1)))
        x = self.final_norm(x)
        if self.pool is not None:
            pooled = self.pool(x)
        elif self.pooling == "avg":
            pooled = ops.mean(x[:, self.num_prefix_tokens :], axis=1)
        else:
            pooled = x[:, 0]
        return self.head(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return base_model_config(self)
