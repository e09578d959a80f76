"""An mT5 encoder text tower, as open_clip's `HFTextEncoder` uses it: T5's
encoder, mean-pooled over the real tokens, then projected."""

import keras
import numpy as np
from keras import ops

from keras_clip.encoders.hf_text_tower import HFTextTower
from keras_clip.layers.initialization import token_embedding
from keras_clip.layers.t5_block import T5EncoderBlock
from keras_clip.utils.checks import check_positive_ints
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.config import keep_config


def relative_position_buckets(context_length, num_buckets=32, max_distance=128):
    """T5's bidirectional bucket of each relative position (key - query)
    from -(context_length - 1) to context_length - 1, in that order: exact
    up to num_buckets / 4 apart, logarithmic beyond, the sign in the top
    half. float32 as T5 computes it, so that bucket edges fall alike.

    Example:

    ```python
    relative_position_buckets(4, num_buckets=8, max_distance=16)  # [2, 2, 1, 0, 5, 6, 6]
    ```
    """
    half = num_buckets // 2
    relative = np.arange(-(context_length - 1), context_length)
    buckets = (relative > 0).astype("int64") * half
    distance = np.abs(relative)
    exact = half // 2
    # Used from `exact` on only; 1 keeps log away from 0 below that.
    scaled = np.maximum(distance, 1).astype("float32") / np.float32(exact)
    logarithmic = np.log(scaled) / np.log(np.float32(max_distance) / np.float32(exact))
    large = exact + (logarithmic * np.float32(half - exact)).astype("int64", copy=False)
    large = np.minimum(large, half - 1)
    return (buckets + np.where(distance < exact, distance, large)).astype("int32")


@keras.saving.register_keras_serializable(package="keras_clip")
class T5TextEncoder(HFTextTower):
    """mT5's encoder as a CLIP text tower (open_clip's `mt5-base-ViT-B-32`
    and `mt5-xl-ViT-H-14`).

    Token embeddings (no positions: a relative-position bias, learned per
    bucket and head, enters every block's attention), `T5EncoderBlock`s
    that mask padding, a final RMS norm, the mean of the real tokens'
    features (open_clip's "mean_pooler") and a projection to `embed_dim`.

    Args:
        vocabulary_size: int.
        width: int. Model width (`d_model`).
        num_layers: int.
        num_heads: int.
        head_dim: int (`d_kv`).
        intermediate_size: int (`d_ff`).
        embed_dim: int. Output width.
        context_length: int. Most tokens per caption (open_clip: 77).
        num_buckets: int. Relative-position buckets (T5: 32).
        max_distance: int. Distance of the last bucket (T5: 128).
        pad_token_id: int (T5: 0).
        projection: "mlp" (open_clip's default), "linear" or None (see
            `layers.text_head.projection_layers`).
        layer_norm_epsilon: float (T5: 1e-6).
        hf_model_name: str or None. The Hugging Face model it came from.

    Call arguments:
        token_ids: int (batch, length), length <= context_length.

    Returns:
        float (batch, embed_dim), before normalisation.

    Example:

    ```python
    encoder = T5TextEncoder(100, 32, 2, 4, 8, 64, embed_dim=16, context_length=8)
    encoder(np.array([[5, 6, 7, 1, 0, 0, 0, 0]])).shape  # (1, 16)
    ```
    """

    CONFIG_ATTRIBUTES = (
        "vocabulary_size",
        "width",
        "num_layers",
        "num_heads",
        "head_dim",
        "intermediate_size",
        "embed_dim",
        "context_length",
        "num_buckets",
        "max_distance",
        "pad_token_id",
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
        head_dim,
        intermediate_size,
        embed_dim,
        context_length=77,
        num_buckets=32,
        max_distance=128,
        pad_token_id=0,
        projection="mlp",
        layer_norm_epsilon=1e-6,
        hf_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            width=width,
            num_layers=num_layers,
            vocabulary_size=vocabulary_size,
            num_heads=num_heads,
            head_dim=head_dim,
            intermediate_size=intermediate_size,
            embed_dim=embed_dim,
            context_length=context_length,
            num_buckets=num_buckets,
            max_distance=max_distance,
        )
        keep_config(self, locals())
        self._buckets = relative_position_buckets(context_length, num_buckets, max_distance)

        # === Layers ===
        policy = self.dtype_policy
        self.token_embedding = token_embedding(vocabulary_size, width, policy, "embed_tokens")
        self.blocks = [
            T5EncoderBlock(
                num_heads,
                head_dim,
                intermediate_size,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = keras.layers.RMSNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="final_layer_norm"
        )
        self.head = self.head_layers()

    def build(self, input_shape):
        check_token_ids(keras.KerasTensor(input_shape, "int32"), self.context_length)
        self.relative_attention_bias = self.add_weight(
            shape=(self.num_buckets, self.num_heads),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="relative_attention_bias",
        )
        self.token_embedding.build(input_shape)
        sequence_shape = (input_shape[0], input_shape[1], self.width)
        for block in self.blocks:
            block.build(sequence_shape)
        self.final_norm.build(sequence_shape)
        self.build_head(input_shape[0])

    def position_bias(self, length):
        """(1, heads, length, length): the bias of key j for query i."""
        positions = ops.arange(length)
        relative = positions[None, :] - positions[:, None] + (self.context_length - 1)
        buckets = ops.take(ops.convert_to_tensor(self._buckets), relative, axis=0)
        bias = ops.take(self.relative_attention_bias, buckets, axis=0)  # (q, k, heads)
        return ops.transpose(bias, (2, 0, 1))[None]

    def encode(self, token_ids, real):
        x = self.token_embedding(token_ids)
        bias = self.position_bias(ops.shape(token_ids)[1])
        for block in self.blocks:
            x = block(x, bias, padding_mask=real)
        return self.final_norm(x)
