"""What open_clip's `HFTextEncoder` puts around a Hugging Face encoder: the
padding mask from `pad_token_id`, the pooling (the mean over the real
tokens, or the first token's features) and the projection
(`keras_clip.layers.text_head`). `RobertaTextEncoder`, `T5TextEncoder` and
`M2M100TextEncoder` are its subclasses."""

import keras
from keras import ops

from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.layers.text_head import masked_mean
from keras_clip.layers.text_head import projection_layers
from keras_clip.utils.checks import check_output_width
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.config import base_model_config


class HFTextTower(ExplicitSignatures, keras.Model):
    """Base of the Hugging Face text towers.

    A subclass keeps `width`, `embed_dim`, `projection`, `context_length`
    and `pad_token_id` as attributes (its `CONFIG_ATTRIBUTES`), makes
    `self.head = self.head_layers()` in its constructor, calls
    `self.build_head(batch)` at the end of `build`, and implements
    `encode(token_ids, real)`: int32 ids and their bool mask to the
    features (batch, length, width). It may override `pool(features,
    real)`: the mean of the real tokens here (open_clip's "mean_pooler").
    A subclass with an `output_tokens` attribute set also returns every
    token's features, as open_clip's mean-pooled towers hand them to a
    CoCa decoder.

    Example:

    ```python
    isinstance(keras_clip.encoders.T5TextEncoder(100, 32, 1, 4, 8, 64, 16), HFTextTower)
    ```
    """

    def head_layers(self):
        check_output_width(self.projection is not None, self.embed_dim, self.width)
        return projection_layers(self.projection, self.width, self.embed_dim, self.dtype_policy)

    def build_head(self, batch):
        width = self.width
        for layer in self.head:
            layer.build((batch, width))
            width = layer.units

    def encode(self, token_ids, real):
        raise NotImplementedError

    def pool(self, features, real):
        return masked_mean(features, real)

    def call(self, token_ids):
        check_token_ids(token_ids, self.context_length)
        token_ids = ops.cast(token_ids, "int32")
        real = ops.not_equal(token_ids, self.pad_token_id)
        features = self.encode(token_ids, real)
        pooled = self.pool(features, real)
        for layer in self.head:
            pooled = layer(pooled)
        if getattr(self, "output_tokens", False):  # a CoCa's: open_clip's token features
            return {"pooled_output": pooled, "sequence_output": features}
        return pooled

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], self.embed_dim)
        if getattr(self, "output_tokens", False):
            return {"pooled_output": pooled, "sequence_output": (*input_shape, self.width)}
        return pooled

    def get_config(self):
        return base_model_config(self)
