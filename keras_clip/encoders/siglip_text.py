"""SigLIP's bidirectional Transformer text tower."""

import keras
from keras import ops

from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.layers.initialization import token_embedding
from keras_clip.layers.transformer_block import transformer_blocks
from keras_clip.utils.checks import check_output_width
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


@keras.saving.register_keras_serializable(package="keras_clip")
class SigLIPTextTransformer(ExplicitSignatures, keras.Model):
    """SigLIP's text Transformer, pooled at the last position, with its head.

    Token and learned position embeddings, bidirectional (not causal)
    pre-LayerNorm blocks, a final LayerNorm, the features at the last
    position, and a Dense head with bias to `embed_dim`. SigLIP's tokenizer
    pads every caption to `context_length`, so the last position is always
    the same one; token ids must come padded to exactly that length.

    Args:
        vocabulary_size: int.
        context_length: int. The padded caption length (SigLIP: 64).
        width: int. Transformer width.
        num_layers: int.
        num_heads: int.
        embed_dim: int or None. Output width of the head (Hugging Face's
            `projection_size`); None: `width`.
        mlp_ratio: float. MLP hidden width relative to `width`.
        activation: str. "gelu_tanh" (SigLIP).
        layer_norm_epsilon: float (SigLIP: 1e-6).
        projection: bool. False: no head, the output is the pooled
            features (open_clip's `proj_type="none"`, e.g.
            ViT-SO400M-16-SigLIP-i18n-256); `embed_dim` must then be `width`.

    Call arguments:
        token_ids: int (batch, context_length).

    Returns:
        float (batch, embed_dim), before normalisation.

    Example:

    ```python
    encoder = SigLIPTextTransformer(1000, 16, width=64, num_layers=2, num_heads=4)
    encoder(np.ones((2, 16), "int32")).shape  # (2, 64)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "vocabulary_size",
        "context_length",
        "width",
        "num_layers",
        "num_heads",
        "embed_dim",
        "mlp_ratio",
        "activation",
        "layer_norm_epsilon",
        "projection",
    )

    def __init__(
        self,
        vocabulary_size,
        context_length,
        width,
        num_layers,
        num_heads,
        embed_dim=None,
        mlp_ratio=4.0,
        activation="gelu_tanh",
        layer_norm_epsilon=1e-6,
        projection=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_transformer_shape(
            width,
            num_layers,
            num_heads,
            vocabulary_size=vocabulary_size,
            context_length=context_length,
        )
        embed_dim = embed_dim or width
        check_output_width(projection, embed_dim, width)
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.token_embedding = token_embedding(vocabulary_size, width, policy)
        self.blocks = transformer_blocks(
            num_layers, num_heads, mlp_ratio, activation, layer_norm_epsilon, policy, "layer_"
        )
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="final_layer_norm"
        )
        self.head = keras.layers.Dense(embed_dim, dtype=policy, name="head") if projection else None

    def build(self, input_shape):
        self._check_length(keras.KerasTensor(input_shape, "int32"))
        self.positional_embedding = self.add_weight(
            shape=(self.context_length, self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="positional_embedding",
        )
        self.token_embedding.build(input_shape)
        sequence_shape = (input_shape[0], self.context_length, self.width)
        for block in self.blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)
        if self.head is not None:
            self.head.build((input_shape[0], self.width))

    def _check_length(self, token_ids):
        check_token_ids(token_ids, self.context_length)
        length = token_ids.shape[1]
        if length is not None and length != self.context_length:
            raise ValueError(
                f"SigLIP pools the last position: token_ids must be padded to "
                f"context_length={self.context_length}; received {length} tokens per caption."
            )

    def call(self, token_ids):
        self._check_length(token_ids)
        x = self.token_embedding(token_ids)
        x = x + ops.cast(self.positional_embedding, x.dtype)
        for block in self.blocks:
            x = block(x)
        pooled = self.final_norm(x)[:, -1]
        return pooled if self.head is None else self.head(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embed_dim)

    def get_config(self):
        return base_model_config(self)
