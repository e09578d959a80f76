"""NLLB's text encoder (transformers' M2M100 encoder), as open_clip's
`HFTextEncoder` uses it: the encoder, its first token's features (the
language code; open_clip's "cls_pooler"), then projected."""

import math

import keras
import numpy as np
from keras import ops

from keras_clip.encoders.hf_text_tower import HFTextTower
from keras_clip.layers.initialization import token_embedding
from keras_clip.layers.transformer_block import TransformerBlock
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.checks import check_transformer_shape
from keras_clip.utils.config import keep_config

POOLINGS = ("cls", "mean")


def sinusoidal_positions(num_positions, width, pad_token_id):
    """M2M100's (fairseq's) fixed position table, float32 (num_positions,
    width): the sines then the cosines of position * 10000^(-i / (width /
    2 - 1)), a zero column for an odd width, and the padding row zero."""
    half = width // 2
    frequencies = np.exp(np.arange(half, dtype=np.float32) * -(math.log(10000) / (half - 1)))
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * frequencies[None]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if width % 2:
        table = np.concatenate([table, np.zeros((num_positions, 1), np.float32)], axis=1)
    table[pad_token_id] = 0.0
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="keras_clip")
class M2M100TextEncoder(HFTextTower):
    """NLLB's encoder (M2M100) as a CLIP text tower (open_clip's
    `nllb-clip-base` and `nllb-clip-large`).

    Token embeddings scaled by sqrt(width), fixed sinusoidal positions
    counted over the real tokens from `pad_token_id + 1` (padding keeps the
    zero row), pre-LayerNorm blocks (`TransformerBlock`, biased attention
    and MLP, padding masked, ReLU), a final LayerNorm; the first token's
    features (NLLB puts the language code there) or the mean of the real
    tokens; a projection to `embed_dim`.

    Args:
        vocabulary_size: int.
        width: int. `d_model`.
        num_layers: int.
        num_heads: int.
        intermediate_size: int. `encoder_ffn_dim`.
        embed_dim: int. Output width.
        context_length: int. Most tokens per caption (open_clip: 77).
        pad_token_id: int (NLLB: 1).
        scale_embedding: bool. Multiply token embeddings by sqrt(width).
        activation: str. The MLP's activation (NLLB: "relu").
        pooling: "cls" (the first token) or "mean".
        projection: "linear" (no bias; NLLB-CLIP's), "mlp" or None.
        layer_norm_epsilon: float.
        hf_model_name: str or None. The Hugging Face model it came from.

    Call arguments:
        token_ids: int (batch, length), length <= context_length.

    Returns:
        float (batch, embed_dim), before normalisation.

    Example:

    ```python
    encoder = M2M100TextEncoder(100, 32, 2, 4, 64, embed_dim=16, context_length=8)
    encoder(np.array([[90, 5, 6, 2, 1, 1, 1, 1]])).shape  # (1, 16)
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
        "pad_token_id",
        "scale_embedding",
        "activation",
        "pooling",
        "projection",
        "layer_norm_epsilon",
        "hf_model_name",
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
        pad_token_id=1,
        scale_embedding=True,
        activation="relu",
        pooling="cls",
        projection="linear",
        layer_norm_epsilon=1e-5,
        hf_model_name=None,
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
        )
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of {POOLINGS}.")
        if width < 4:
            raise ValueError(f"The sinusoidal positions need a width of at least 4, got {width}.")
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        self.token_embedding = token_embedding(vocabulary_size, width, policy, "embed_tokens")
        self.blocks = [
            TransformerBlock(
                num_heads,
                mlp_ratio=intermediate_size / width,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=policy,
                name=f"layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="layer_norm"
        )
        self.head = self.head_layers()
        self.position_table = sinusoidal_positions(
            context_length + pad_token_id + 1, width, pad_token_id
        )

    def build(self, input_shape):
        check_token_ids(keras.KerasTensor(input_shape, "int32"), self.context_length)
        self.token_embedding.build(input_shape)
        sequence_shape = (input_shape[0], input_shape[1], self.width)
        for block in self.blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)
        self.build_head(input_shape[0])

    def encode(self, token_ids, real):
        counted = ops.cast(real, "int32")
        positions = ops.cumsum(counted, axis=1) * counted + self.pad_token_id
        x = self.token_embedding(token_ids)
        if self.scale_embedding:
            x = x * ops.cast(math.sqrt(self.width), x.dtype)
        table = ops.convert_to_tensor(self.position_table)
        x = x + ops.cast(ops.take(table, positions, axis=0), x.dtype)
        for block in self.blocks:
            x = block(x, padding_mask=real)
        return self.final_norm(x)

    def pool(self, features, real):
        if self.pooling == "cls":
            return features[:, 0]
        return super().pool(features, real)
