"""CLIP-Lite's projection block: a non-linear path plus a linear shortcut."""

import keras


@keras.saving.register_keras_serializable(package="keras_clip")
class ProjectionBlock(keras.layers.Layer):
    """Dense (no bias) -> BatchNorm -> ReLU -> Dense, plus a linear shortcut.

    The block of Deep InfoMax and CLIP-Lite that maps a tower's features into
    the space the critic scores in: out = LayerNorm(mlp(x) + shortcut(x)).

    Args:
        output_dim: int. Width of the projected features.
        hidden_dim: int or None. Width of the hidden layer (None: output_dim).

    Example:

    ```python
    block = ProjectionBlock(128)
    block(np.zeros((4, 512), "float32")).shape  # (4, 128)
    ```
    """

    def __init__(self, output_dim, hidden_dim=None, **kwargs):
        super().__init__(**kwargs)
        if output_dim <= 0:
            raise ValueError(f"output_dim must be positive, got {output_dim}.")
        self.output_dim = output_dim
        self.hidden_dim = hidden_dim

    def build(self, input_shape):
        policy = self.dtype_policy
        hidden_dim = self.hidden_dim or self.output_dim
        # === Layers ===
        self.hidden_dense = keras.layers.Dense(
            hidden_dim, use_bias=False, dtype=policy, name="hidden"
        )
        self.hidden_norm = keras.layers.BatchNormalization(dtype=policy, name="hidden_norm")
        self.output_dense = keras.layers.Dense(self.output_dim, dtype=policy, name="output")
        self.shortcut_dense = keras.layers.Dense(
            self.output_dim, use_bias=False, dtype=policy, name="shortcut"
        )
        self.output_norm = keras.layers.LayerNormalization(dtype=policy, name="output_norm")
        hidden_shape = tuple(input_shape[:-1]) + (hidden_dim,)
        output_shape = tuple(input_shape[:-1]) + (self.output_dim,)
        self.hidden_dense.build(input_shape)
        self.hidden_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.shortcut_dense.build(input_shape)
        self.output_norm.build(output_shape)

    def call(self, x, training=None):
        hidden = self.hidden_norm(self.hidden_dense(x), training=training)
        hidden = keras.ops.relu(hidden)
        return self.output_norm(self.output_dense(hidden) + self.shortcut_dense(x))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "hidden_dim": self.hidden_dim})
        return config
