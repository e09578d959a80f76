"""CLIP's causal Transformer text tower."""

import keras
from keras import ops

from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.layers.initialization import token_embedding
from keras_clip.layers.pooling import end_token_positions
from keras_clip.layers.pooling import gather_positions
from keras_clip.layers.transformer_block import transformer_blocks
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class TextTransformer(ExplicitSignatures, keras.Model):
    """OpenAI CLIP's text Transformer, pooled at the end-of-text token.

    Token and learned position embeddings, causal (or, with
    `causal=False`, bidirectional) pre-LayerNorm blocks, a
    final LayerNorm, and the features at the end-of-text token: the first
    `end_token_id`, or, when that is None, the first occurrence of the
    caption's largest id (OpenAI's tokenizer gives end-of-text the largest
    id). Causal attention means padding after the end token never reaches
    the pooled features, so no padding mask is needed; a bidirectional
    tower (open_clip's `no_causal_mask`: MobileCLIP, CLIPA) attends to the
    padding too, as open_clip's does.

    Args:
        vocabulary_size: int.
        context_length: int. The longest caption, in tokens.
        width: int. Transformer width.
        num_layers: int.
        num_heads: int. Divides width.
        end_token_id: int or None.
        mlp_ratio: float.
        activation: str. "quick_gelu" (OpenAI) or a Keras activation name.
        layer_norm_epsilon: float (CLIP: 1e-5; open_clip's `norm_kwargs`).
        causal: bool. Causal self-attention (CLIP); False attends to
            every position.
        pooling: "end_token" or "last" (the last position of the context,
            open_clip's `pool_type="last"`: CLIPA).
        layer_scale_init: float or None. LayerScale in every block.
        class_token: bool. CoCa's text tower (open_clip's `embed_cls`): a
            learned token appended after the caption; its output, after
            the final LayerNorm, is the pooled feature. Keys are masked
            where the token one place earlier is padding (open_clip's
            masking of its released CoCa weights, which shifts the padding
            mask by the class token).
        output_tokens: bool. Return the tokens too (CoCa's decoder reads
            them): the caption's positions, before the final LayerNorm
            with a class token, after it without.
        pad_token_id: int. The padding id `class_token` masks.

    Call arguments:
        token_ids: int (batch, length), length <= context_length.

    Returns:
        float (batch, width); with `output_tokens`, a dict of that
        ("pooled_output") and the tokens ("sequence_output", (batch,
        length, width)).

    Example:

    ```python
    encoder = TextTransformer(1000, 32, width=128, num_layers=4, num_heads=4)
    encoder(np.ones((2, 32), "int32")).shape  # (2, 128)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "vocabulary_size",
        "context_length",
        "width",
        "num_layers",
        "num_heads",
        "end_token_id",
        "mlp_ratio",
        "activation",
        "layer_norm_epsilon",
        "causal",
        "pooling",
        "layer_scale_init",
        "class_token",
        "output_tokens",
        "pad_token_id",
    )

    def __init__(
        self,
        vocabulary_size,
        context_length,
        width,
        num_layers,
        num_heads,
        end_token_id=None,
        mlp_ratio=4.0,
        activation="quick_gelu",
        layer_norm_epsilon=1e-5,
        causal=True,
        pooling="end_token",
        layer_scale_init=None,
        class_token=False,
        output_tokens=False,
        pad_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in ("end_token", "last"):
            raise ValueError(f"Unknown pooling {pooling!r}; expected 'end_token' or 'last'.")
        check_transformer_shape(
            width,
            num_layers,
            num_heads,
            vocabulary_size=vocabulary_size,
            context_length=context_length,
        )
        if end_token_id is not None and not 0 <= end_token_id < vocabulary_size:
            raise ValueError(
                f"end_token_id={end_token_id} is outside the vocabulary [0, {vocabulary_size})."
            )
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.token_embedding = token_embedding(vocabulary_size, width, policy)
        self.blocks = transformer_blocks(
            num_layers,
            num_heads,
            mlp_ratio,
            activation,
            layer_norm_epsilon,
            policy,
            "resblock_",
            causal=causal,
            layer_scale_init=layer_scale_init,
        )
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="ln_final"
        )

    def build(self, input_shape):
        check_token_ids(keras.KerasTensor(input_shape, "int32"), self.context_length)
        if self.class_token:
            self.class_embedding = self.add_weight(
                shape=(self.width,),
                initializer=keras.initializers.RandomNormal(stddev=0.01),
                name="cls_emb",
            )
        self.positional_embedding = self.add_weight(
            shape=(self.context_length + int(self.class_token), self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="positional_embedding",
        )
        self.token_embedding.build(input_shape)
        length = None if input_shape[1] is None else input_shape[1] + int(self.class_token)
        sequence_shape = (input_shape[0], length, self.width)
        for block in self.blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)

    def call(self, token_ids):
        check_token_ids(token_ids, self.context_length)
        x = self.token_embedding(token_ids)
        padding_mask = None
        if self.class_token:
            batch = ops.shape(token_ids)[0]
            class_token = ops.cast(self.class_embedding, x.dtype)
            x = ops.concatenate([x, ops.broadcast_to(class_token, (batch, 1, self.width))], 1)
            # open_clip's legacy CoCa mask: the class token's "always real"
            # flag goes first, so key j is real when token j - 1 is.
            real = ops.not_equal(token_ids, self.pad_token_id)
            padding_mask = ops.concatenate([ops.ones_like(real[:, :1]), real], axis=1)
        length = ops.shape(x)[1]
        x = x + ops.cast(self.positional_embedding[:length], x.dtype)
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask)
        if self.class_token:
            pooled, tokens = self.final_norm(x[:, -1]), x[:, :-1]
        else:
            x = self.final_norm(x)
            tokens = x
            if self.pooling == "last":
                pooled = x[:, -1]
            else:
                pooled = gather_positions(x, end_token_positions(token_ids, self.end_token_id))
        if self.output_tokens:
            return {"pooled_output": pooled, "sequence_output": tokens}
        return pooled

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], self.width)
        if not self.output_tokens:
            return pooled
        return {"pooled_output": pooled, "sequence_output": (*input_shape, self.width)}

    def get_config(self):
        return base_model_config(self)
