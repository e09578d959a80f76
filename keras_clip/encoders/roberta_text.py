"""A RoBERTa / XLM-RoBERTa text tower, as open_clip's `HFTextEncoder` uses
it: the encoder, mean-pooled over the real tokens, then projected."""

import keras
from keras import ops

from keras_clip.encoders.hf_text_tower import HFTextTower
from keras_clip.layers.initialization import token_embedding
from keras_clip.layers.post_norm_block import PostNormTransformerBlock
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class RobertaTextEncoder(HFTextTower):
    """RoBERTa's encoder as a CLIP text tower (open_clip's multilingual
    `xlm-roberta-base-ViT-B-32` and `xlm-roberta-large-ViT-H-14`).

    Token, position and token-type embeddings, summed and normalised;
    post-LayerNorm blocks (`PostNormTransformerBlock`) that mask padding;
    the mean of the real tokens' features (open_clip's "mean_pooler"); and
    a projection to `embed_dim`. Positions count the real tokens from
    `pad_token_id + 1`, as RoBERTa's do (padding sits at `pad_token_id`).

    Args:
        vocabulary_size: int.
        width: int. Hidden size.
        num_layers: int.
        num_heads: int.
        intermediate_size: int. MLP hidden width.
        embed_dim: int. Output width.
        context_length: int. Most tokens per caption (the tokenizer's
            padded length; open_clip: 77).
        max_positions: int. Rows of the position table (RoBERTa: 514);
            at least `context_length + pad_token_id + 1`.
        pad_token_id: int (RoBERTa: 1).
        type_vocabulary_size: int. Rows of the token-type table (XLM-R: 1);
            every token is of type 0, as open_clip passes no types.
        projection: "mlp" (Linear, GELU, Linear, no biases; open_clip's
            default), "linear" (no bias) or None (none: `embed_dim` must
            be `width`).
        layer_norm_epsilon: float.
        hf_model_name: str or None. The Hugging Face model it came from
            (written back to open_clip's config).
        output_tokens: bool. Also return every token's features (a CoCa's
            text tower, `coca_roberta-ViT-B-32`).

    Call arguments:
        token_ids: int (batch, length), length <= context_length.

    Returns:
        float (batch, embed_dim), before normalisation; with
        `output_tokens`, a dict of it ("pooled_output") and the features
        (batch, length, width) ("sequence_output").

    Example:

    ```python
    encoder = RobertaTextEncoder(100, 32, 2, 4, 64, embed_dim=16, context_length=8)
    encoder(np.array([[0, 5, 6, 2, 1, 1, 1, 1]])).shape  # (1, 16)
    ```
    """

    CONFIG_ATTRIBUTES = (
        "vocabulary_size",
        "width",
        "num_layers",
        "num_heads",
        "intermediate_size",
        "embed_dim",
        "context_length",
        "max_positions",
        "pad_token_id",
        "type_vocabulary_size",
        "projection",
        "layer_norm_epsilon",
        "hf_model_name",
        "output_tokens",
    )

    def __init__(
        self,
        vocabulary_size,
        width,
        num_layers,
        num_heads,
        intermediate_size,
        embed_dim,
        context_length=77,
        max_positions=514,
        pad_token_id=1,
        type_vocabulary_size=1,
        projection="mlp",
        layer_norm_epsilon=1e-5,
        hf_model_name=None,
        output_tokens=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(
            width,
            num_layers,
            num_heads,
            vocabulary_size=vocabulary_size,
            intermediate_size=intermediate_size,
            embed_dim=embed_dim,
            context_length=context_length,
            type_vocabulary_size=type_vocabulary_size,
        )
        if max_positions < context_length + pad_token_id + 1:
            raise ValueError(
                f"max_positions={max_positions} cannot place {context_length} tokens counted "
                f"from pad_token_id + 1 = {pad_token_id + 1}."
            )
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.token_embedding = token_embedding(vocabulary_size, width, policy, "word_embeddings")
        self.embedding_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="embedding_norm"
        )
        self.blocks = [
            PostNormTransformerBlock(
                num_heads,
                intermediate_size,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=policy,
                name=f"layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.head = self.head_layers()

    def build(self, input_shape):
        check_token_ids(keras.KerasTensor(input_shape, "int32"), self.context_length)
        normal = keras.initializers.RandomNormal(stddev=0.02)
        self.position_embedding = self.add_weight(
            shape=(self.max_positions, self.width), initializer=normal, name="position_embeddings"
        )
        self.token_type_embedding = self.add_weight(
            shape=(self.type_vocabulary_size, self.width),
            initializer=normal,
            name="token_type_embeddings",
        )
        self.token_embedding.build(input_shape)
        sequence_shape = (input_shape[0], input_shape[1], self.width)
        self.embedding_norm.build(sequence_shape)
        for block in self.blocks:
            block.build(sequence_shape)
        self.build_head(input_shape[0])

    def encode(self, token_ids, real):
        counted = ops.cast(real, "int32")
        positions = ops.cumsum(counted, axis=1) * counted + self.pad_token_id
        x = self.token_embedding(token_ids)
        x = x + ops.cast(self.token_type_embedding[0], x.dtype)
        x = x + ops.cast(ops.take(self.position_embedding, positions, axis=0), x.dtype)
        x = self.embedding_norm(x)
        for block in self.blocks:
            x = block(x, padding_mask=real)
        return x
