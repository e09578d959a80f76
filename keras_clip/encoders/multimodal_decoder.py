"""CoCa's multimodal text decoder: the captioning head."""

import keras
from keras import ops

from keras_clip.layers.cross_attention_block import CrossAttentionBlock
from keras_clip.layers.transformer_block import transformer_blocks
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class MultimodalDecoder(keras.Model):
    """Text tokens attend causally to each other and to the image tokens.

    Each layer is a causal pre-LayerNorm self-attention block followed by
    a `CrossAttentionBlock` over the image tokens; a final LayerNorm and a
    bias-free projection give next-token logits over the vocabulary
    (open_clip's `MultimodalTransformer`, CoCa's decoder, Yu et al. 2022).
    It has no token embedding of its own: it reads the unimodal text
    tower's token outputs.

    Args:
        vocabulary_size: int. Width of the logits.
        width: int. The decoder's width (= the text tokens' and the image
            tokens' width).
        num_layers: int. Self-attention + cross-attention pairs.
        num_heads: int. Divides width.
        mlp_ratio: float.
        activation: str. "gelu" (open_clip's CoCa) or "quick_gelu".
        layer_norm_epsilon: float.
        layer_scale_init: float or None. LayerScale in every block.

    Call arguments:
        text_tokens: float (batch, length, width).
        image_tokens: float (batch, tokens, width).

    Returns:
        float (batch, length, vocabulary_size): position i predicts token
        i + 1.

    Example:

    ```python
    decoder = MultimodalDecoder(1000, width=64, num_layers=2, num_heads=4)
    text, image = np.zeros((2, 12, 64), "float32"), np.zeros((2, 16, 64), "float32")
    decoder(text, image).shape  # (2, 12, 1000)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "vocabulary_size",
        "width",
        "num_layers",
        "num_heads",
        "mlp_ratio",
        "activation",
        "layer_norm_epsilon",
        "layer_scale_init",
    )

    def __init__(
        self,
        vocabulary_size,
        width,
        num_layers,
        num_heads,
        mlp_ratio=4.0,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        layer_scale_init=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(width, num_layers, num_heads, vocabulary_size=vocabulary_size)
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.self_attention_blocks = transformer_blocks(
            num_layers, num_heads, mlp_ratio, activation, layer_norm_epsilon, policy,
            "resblock_", causal=True, layer_scale_init=layer_scale_init,
        )  # fmt: skip
        self.cross_attention_blocks = [
            CrossAttentionBlock(
                num_heads,
                mlp_ratio,
                activation,
                layer_norm_epsilon,
                layer_scale_init,
                dtype=policy,
                name=f"cross_attn_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="ln_final"
        )
        self.logits_dense = keras.layers.Dense(
            vocabulary_size, use_bias=False, dtype=policy, name="text_projection"
        )

    def build(self, text_tokens_shape, image_tokens_shape):
        for block, cross in zip(self.self_attention_blocks, self.cross_attention_blocks):
            block.build(text_tokens_shape)
            cross.build(text_tokens_shape, image_tokens_shape)
        self.final_norm.build(text_tokens_shape)
        self.logits_dense.build(text_tokens_shape)

    def call(self, text_tokens, image_tokens):
        x = text_tokens
        for block, cross in zip(self.self_attention_blocks, self.cross_attention_blocks):
            x = cross(block(x), image_tokens)
        x = self.final_norm(x)
        logits = self.logits_dense(ops.reshape(x, (-1, self.width)))
        return ops.reshape(logits, (ops.shape(x)[0], ops.shape(x)[1], self.vocabulary_size))

    def compute_output_shape(self, text_tokens_shape, image_tokens_shape):
        return tuple(text_tokens_shape[:-1]) + (self.vocabulary_size,)

    def get_config(self):
        return base_model_config(self)
