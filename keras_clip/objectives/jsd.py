"""CLIP-Lite's Jensen-Shannon mutual-information objective as a loss layer."""

import keras
from keras import ops

from keras_clip.layers.projection_block import ProjectionBlock
from keras_clip.objectives import functional
from keras_clip.objectives.base import ContrastiveObjective
from keras_clip.objectives.base import check_positive
from keras_clip.objectives.prior import PriorDiscriminator
from keras_clip.objectives.scores import BatchScores
from keras_clip.utils.config import config_attributes
from keras_clip.utils.config import keep_config

CRITICS = ("dot", "projection")


@keras.saving.register_keras_serializable(package="keras_clip")
class JSDLoss(ContrastiveObjective):
    """The JSD lower bound on mutual information, with one negative per pair.

    The critic is T(v, t) = exp(tau) * <n(f(v)), n(g(t))>, n the L2
    normalisation and tau a weight initialised at log(1 / temperature) and
    capped at log(max_logit_scale). With `critic="dot"`, f and g are the
    identity: the model's projection heads play their part (as in
    `keras_clip.CLIPLite`, whose heads are `ProjectionBlock`s). With
    `critic="projection"` this layer owns f and g as `ProjectionBlock`s of
    width `projection_dim`.

    Each image's negative is the caption of the next example in the batch
    (the text batch rolled by one):

        loss = mean softplus(-T(v_i, t_i)) + mean softplus(T(v_i, t_{i+1})).

    Args:
        critic: "dot" or "projection".
        projection_dim: int or None. Width of f and g for the projection
            critic (None: the embedding width).
        symmetric: bool. Also score each caption against the next image
            and average both directions.
        prior_weight: float >= 0. Weight of Deep InfoMax's prior-matching
            term (see `PriorDiscriminator`) on the critic's features.
        temperature: float. Initial temperature of the critic.
        learnable_temperature: bool.
        max_logit_scale: float. Upper bound on exp(tau).
        local_negatives: bool. Under a `tf.distribute` strategy, True (the
            default, as in CLIP-Lite) rolls each replica's own batch for the
            negative; False rolls the global batch (gathered from all
            replicas), which gives one device's loss and gradient. On one
            device, and under JAX's DataParallel, the batch is global anyway.

    Example:

    ```python
    loss = JSDLoss()(image_embeddings, text_embeddings)
    ```
    """

    mutual_information_estimator = "jsd"
    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "critic",
        "projection_dim",
        "symmetric",
        "prior_weight",
        "temperature",
        "learnable_temperature",
        "max_logit_scale",
    )

    def __init__(
        self,
        critic="dot",
        projection_dim=None,
        symmetric=False,
        prior_weight=0.0,
        temperature=0.07,
        learnable_temperature=True,
        max_logit_scale=100.0,
        local_negatives=True,
        **kwargs,
    ):
        super().__init__(local_negatives=local_negatives, **kwargs)
        if critic not in CRITICS:
            raise ValueError(f"Unknown critic {critic!r}; expected one of {CRITICS}.")
        check_positive(
            temperature=temperature, max_logit_scale=max_logit_scale, projection_dim=projection_dim
        )
        if prior_weight < 0:
            raise ValueError(f"prior_weight must be >= 0, got {prior_weight}.")
        keep_config(self, locals())

    def build(self, input_shape):
        dim = input_shape[-1]
        self.log_logit_scale = self.add_log_scale(
            1.0 / self.temperature,
            trainable=self.learnable_temperature,
            max_scale=self.max_logit_scale,
        )
        # === Layers ===
        self.image_critic = self.text_critic = self.prior = None
        critic_dim = dim
        if self.critic == "projection":
            critic_dim = self.projection_dim or dim
            self.image_critic = ProjectionBlock(critic_dim, name="image_critic")
            self.text_critic = ProjectionBlock(critic_dim, name="text_critic")
            self.image_critic.build(input_shape)
            self.text_critic.build(input_shape)
        if self.prior_weight:
            self.prior = PriorDiscriminator(name="prior")
            self.prior.build((None, critic_dim))

    @property
    def logit_scale(self):
        return self.clamped_exp(self.log_logit_scale, self.max_logit_scale)

    def compute(self, image_embeddings, text_embeddings, training=None):
        image_features = ops.cast(image_embeddings, "float32")
        text_features = ops.cast(text_embeddings, "float32")
        if self.image_critic is not None:
            image_features = self.image_critic(image_features, training=training)
            text_features = self.text_critic(text_features, training=training)
        image_features = functional.l2_normalize(image_features)
        text_features = functional.l2_normalize(text_features)
        all_images, all_texts, offset, replicas = self.global_batch(image_features, text_features)
        # Under a strategy: this replica's rows against the global batch.
        logits = functional.similarity_logits(
            image_features, all_texts, self.logit_scale, normalize=False, paired=replicas == 1
        )
        # Image i against caption i + 1 (the text batch rolled by one).
        if replicas == 1:
            loss = functional.jsd_from_logits(logits)
            if self.symmetric:  # Caption i against image i + 1.
                loss = (loss + functional.jsd_from_logits(ops.transpose(logits))) / 2.0
            scores = BatchScores.from_square(ops.stop_gradient(logits))
        else:
            loss = functional.jsd_from_row_logits(logits, offset)
            text_to_image = functional.similarity_logits(
                text_features, all_images, self.logit_scale, normalize=False, paired=False
            )
            if self.symmetric:
                loss = (loss + functional.jsd_from_row_logits(text_to_image, offset)) / 2.0
            scores = self.replica_scores(logits, text_to_image, offset)
        if self.prior is not None:
            features = ops.concatenate([image_features, text_features], axis=0)
            loss = loss + self.prior_weight * self.prior(features)
        return loss, scores

    def get_config(self):
        return {**super().get_config(), **config_attributes(self)}
