"""CLIP's attention pooling, the head of the modified ResNet."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
class AttentionPool2D(keras.layers.Layer):
    """Pools a feature map with one multi-head attention query.

    The spatial positions are flattened and their mean is prepended as an
    extra token; a learned position embedding is added; the mean token
    attends (as the only query) over all tokens; an output projection maps
    the result to `output_dim`. This replaces global average pooling in
    OpenAI CLIP's ResNets.

    Args:
        spatial_size: int. Height (= width) of the incoming feature map.
        num_heads: int. Attention heads; must divide the channel count.
        output_dim: int or None. Output width; None keeps the channel count.

    Example:

    ```python
    pool = AttentionPool2D(spatial_size=7, num_heads=8, output_dim=256)
    pool(np.zeros((2, 7, 7, 512), "float32")).shape  # (2, 256)
    ```
    """

    def __init__(self, spatial_size, num_heads, output_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.spatial_size = spatial_size
        self.num_heads = num_heads
        self.output_dim = output_dim

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(
                f"{channels} channels are not divisible by num_heads={self.num_heads}."
            )
        self.head_dim = channels // self.num_heads
        num_tokens = self.spatial_size**2 + 1
        # === Layers ===
        self.position_embedding = self.add_weight(
            shape=(num_tokens, channels),
            initializer=keras.initializers.RandomNormal(stddev=channels**-0.5),
            name="positional_embedding",
        )
        token_shape = (None, num_tokens, channels)
        self.query_dense = keras.layers.Dense(channels, dtype=self.dtype_policy, name="q_proj")
        self.key_dense = keras.layers.Dense(channels, dtype=self.dtype_policy, name="k_proj")
        self.value_dense = keras.layers.Dense(channels, dtype=self.dtype_policy, name="v_proj")
        self.output_dense = keras.layers.Dense(
            self.output_dim or channels, dtype=self.dtype_policy, name="c_proj"
        )
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(token_shape)

    def call(self, feature_map):
        shape = ops.shape(feature_map)
        batch, channels = shape[0], shape[-1]
        tokens = ops.reshape(feature_map, (batch, -1, channels))
        mean_token = ops.mean(tokens, axis=1, keepdims=True)
        tokens = ops.concatenate([mean_token, tokens], axis=1)
        tokens = tokens + ops.cast(self.position_embedding, tokens.dtype)

        def heads(x):
            return ops.reshape(x, (batch, -1, self.num_heads, self.head_dim))

        query = heads(self.query_dense(tokens[:, :1]))
        key = heads(self.key_dense(tokens))
        value = heads(self.value_dense(tokens))
        pooled = ops.dot_product_attention(query, key, value)
        pooled = ops.reshape(pooled, (batch, self.num_heads * self.head_dim))
        return self.output_dense(pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim or input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "spatial_size": self.spatial_size,
                "num_heads": self.num_heads,
                "output_dim": self.output_dim,
            }
        )
        return config
