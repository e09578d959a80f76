"""Deep InfoMax's prior matching: a discriminator against a sphere prior."""

import keras
from keras import ops

from keras_clip.objectives import functional


@keras.saving.register_keras_serializable(package="keras_clip")
class PriorDiscriminator(keras.layers.Layer):
    """Pushes embeddings towards a uniform distribution on the unit sphere.

    A two-layer discriminator D learns to tell samples of the prior
    (normalised Gaussian vectors) from embeddings; the embeddings learn to
    fool it. Both halves of this adversarial game are folded into one loss
    to minimise, so no separate optimizer step is needed:

        softplus(-D(prior)) + softplus(D(stop_gradient(z)))   (trains D)
        + softplus(-D_frozen(z))                               (trains z)

    where D_frozen uses D's weights behind `stop_gradient`.

    Args:
        hidden_dim: int. Width of the discriminator's hidden layer.
        seed: int or None. Seed of the prior samples.

    Example:

    ```python
    prior = PriorDiscriminator(hidden_dim=64)
    term = prior(normalized_embeddings)
    ```
    """

    def __init__(self, hidden_dim=64, seed=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        dim = input_shape[-1]
        glorot = keras.initializers.GlorotUniform
        self.hidden_kernel = self.add_weight(
            shape=(dim, self.hidden_dim), initializer=glorot(), name="hidden_kernel"
        )
        self.hidden_bias = self.add_weight(
            shape=(self.hidden_dim,), initializer="zeros", name="hidden_bias"
        )
        self.output_kernel = self.add_weight(
            shape=(self.hidden_dim, 1), initializer=glorot(), name="output_kernel"
        )
        self.output_bias = self.add_weight(shape=(1,), initializer="zeros", name="output_bias")

    def discriminate(self, z, frozen=False):
        weights = (self.hidden_kernel, self.hidden_bias, self.output_kernel, self.output_bias)
        if frozen:
            weights = [ops.stop_gradient(w) for w in weights]
        hidden_kernel, hidden_bias, output_kernel, output_bias = weights
        hidden = ops.relu(ops.matmul(z, hidden_kernel) + hidden_bias)
        return ops.squeeze(ops.matmul(hidden, output_kernel) + output_bias, -1)

    def call(self, z):
        z = ops.cast(z, "float32")
        prior = functional.l2_normalize(keras.random.normal(ops.shape(z), seed=self.seed_generator))
        discriminator_loss = ops.mean(ops.softplus(-self.discriminate(prior))) + ops.mean(
            ops.softplus(self.discriminate(ops.stop_gradient(z)))
        )
        encoder_loss = ops.mean(ops.softplus(-self.discriminate(z, frozen=True)))
        return discriminator_loss + encoder_loss

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim, "seed": self.seed})
        return config
