"""CLIP's Vision Transformer image tower."""

import keras
from keras import ops

from keras_clip.layers.attentional_pooler import AttentionalPooler
from keras_clip.layers.transformer_block import transformer_blocks
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class VisionTransformer(keras.Model):
    """OpenAI CLIP's ViT, returning the class token's features.

    Bias-free patch convolution, a learned class token, learned position
    embeddings, a LayerNorm before the blocks (ln_pre), pre-LayerNorm
    residual attention blocks, and a LayerNorm on the class token's output
    (ln_post). The projection to the joint space is the CLIP model's.
    open_clip's variants: no ln_pre, the mean of the patch tokens instead
    of the class token (CLIPA), LayerScale in the blocks (ViT-M-16-alt).

    Args:
        image_size: int. Height and width of the (square) input images.
        patch_size: int. Side of each square patch; divides image_size.
        width: int. Transformer width.
        num_layers: int. Number of residual attention blocks.
        num_heads: int. Attention heads per block; divides width.
        mlp_ratio: float. MLP hidden width relative to `width`.
        activation: str. "quick_gelu" (OpenAI) or a Keras activation name.
        layer_norm_epsilon: float (CLIP: 1e-5; open_clip's `norm_kwargs`).
        pre_norm: bool. The LayerNorm before the blocks (open_clip's
            `no_ln_pre` is False).
        pooling: "token" (the class token) or "mean" (of the patch tokens).
        norm_after_pool: bool. With "mean": ln_post on the mean (open_clip's
            `final_ln_after_pool`) instead of on each token.
        layer_scale_init: float or None. LayerScale in every block.
        attention_pool_queries: int or None. CoCa's image tower: an
            `AttentionalPooler` of this many queries over the tokens, then
            ln_post; the first query's output is the pooled feature, the
            rest are the tokens (open_clip's `attentional_pool`).
        attention_pool_width: int. The pooler's width (open_clip: the
            joint embedding width).
        attention_pool_heads: int. The pooler's attention heads.
        output_tokens: bool. Return the tokens too (for CoCa's decoder):
            the patch tokens after ln_post, or the pooler's other outputs.

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, width) (the pooler's width with an attentional
        pooler); with `output_tokens`, a dict of that ("pooled_output")
        and the tokens ("sequence_output", (batch, tokens, width)).

    Example:

    ```python
    encoder = VisionTransformer(64, 8, width=128, num_layers=4, num_heads=4)
    encoder(np.zeros((2, 64, 64, 3), "float32")).shape  # (2, 128)
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
        "pre_norm",
        "pooling",
        "norm_after_pool",
        "layer_scale_init",
        "attention_pool_queries",
        "attention_pool_width",
        "attention_pool_heads",
        "output_tokens",
    )

    def __init__(
        self,
        image_size,
        patch_size,
        width,
        num_layers,
        num_heads,
        mlp_ratio=4.0,
        activation="quick_gelu",
        layer_norm_epsilon=1e-5,
        pre_norm=True,
        pooling="token",
        norm_after_pool=False,
        layer_scale_init=None,
        attention_pool_queries=None,
        attention_pool_width=None,
        attention_pool_heads=8,
        output_tokens=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(
            width, num_layers, num_heads, image_size=image_size, patch_size=patch_size
        )
        if pooling not in ("token", "mean"):
            raise ValueError(f"Unknown pooling {pooling!r}; expected 'token' or 'mean'.")
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} is not a multiple of patch_size={patch_size}."
            )
        if (attention_pool_queries is not None or output_tokens) and pooling != "token":
            raise ValueError(
                "CoCa's image tower (attention_pool_queries, output_tokens) pools the "
                f"first token: pooling='token', not {pooling!r}."
            )
        keep_config(self, locals())
        self.grid_size = image_size // patch_size

        # === Layers ===
        policy = self.dtype_policy
        self.patch_embedding = keras.layers.Conv2D(
            width, patch_size, strides=patch_size, use_bias=False, dtype=policy, name="conv1"
        )
        self.pre_layer_norm = None
        if pre_norm:
            self.pre_layer_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=policy, name="ln_pre"
            )
        self.blocks = transformer_blocks(
            num_layers, num_heads, mlp_ratio, activation, layer_norm_epsilon, policy, "resblock_",
            layer_scale_init=layer_scale_init,
        )  # fmt: skip
        self.attention_pool = None
        if attention_pool_queries is not None:
            self.attention_pool = AttentionalPooler(
                attention_pool_queries,
                attention_pool_width or width,
                attention_pool_heads,
                layer_norm_epsilon,
                dtype=policy,
                name="attn_pool",
            )
        self.post_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="ln_post"
        )

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        scale = self.width**-0.5
        self.class_embedding = self.add_weight(
            shape=(self.width,),
            initializer=keras.initializers.RandomNormal(stddev=scale),
            name="class_embedding",
        )
        self.positional_embedding = self.add_weight(
            shape=(self.grid_size**2 + 1, self.width),
            initializer=keras.initializers.RandomNormal(stddev=scale),
            name="positional_embedding",
        )
        self.patch_embedding.build(input_shape)
        token_shape = (input_shape[0], self.grid_size**2 + 1, self.width)
        if self.pre_layer_norm is not None:
            self.pre_layer_norm.build(token_shape)
        for block in self.blocks:
            block.build(token_shape)
        if self.attention_pool is not None:
            self.attention_pool.build(token_shape)
        self.post_norm.build((input_shape[0], self.pooled_width))

    @property
    def pooled_width(self):
        """The width of the pooled features (the pooler's, with one)."""
        if self.attention_pool is None:
            return self.width
        return self.attention_pool.width

    def call(self, images):
        check_images(images, self.image_size)
        patches = self.patch_embedding(images)
        batch = ops.shape(patches)[0]
        patches = ops.reshape(patches, (batch, self.grid_size**2, self.width))
        class_token = ops.cast(self.class_embedding, patches.dtype)
        class_token = ops.broadcast_to(class_token, (batch, 1, self.width))
        x = ops.concatenate([class_token, patches], axis=1)
        x = x + ops.cast(self.positional_embedding, x.dtype)
        if self.pre_layer_norm is not None:
            x = self.pre_layer_norm(x)
        for block in self.blocks:
            x = block(x)
        if self.output_tokens or self.attention_pool is not None:
            if self.attention_pool is not None:
                x = self.attention_pool(x)
            x = self.post_norm(x)
            pooled, tokens = x[:, 0], x[:, 1:]
            if self.output_tokens:
                return {"pooled_output": pooled, "sequence_output": tokens}
            return pooled
        if self.pooling == "token":
            return self.post_norm(x[:, 0])
        if self.norm_after_pool:
            return self.post_norm(ops.mean(x[:, 1:], axis=1))
        return ops.mean(self.post_norm(x[:, 1:]), axis=1)

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], self.pooled_width)
        if not self.output_tokens:
            return pooled
        if self.attention_pool is None:
            tokens = (input_shape[0], self.grid_size**2, self.width)
        else:
            tokens = (input_shape[0], self.attention_pool.num_queries - 1, self.pooled_width)
        return {"pooled_output": pooled, "sequence_output": tokens}

    def get_config(self):
        return base_model_config(self)
