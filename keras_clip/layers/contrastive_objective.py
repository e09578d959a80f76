"""The base class of the loss layers, and the objective-name resolver."""

import math

import keras
from keras import ops

from keras_clip import distribute
from keras_clip import losses
from keras_clip.layers.constraints import MaxValue


@keras.saving.register_keras_serializable(package="keras_clip")
class ContrastiveObjective(keras.layers.Layer):
    """A loss layer: owns an objective's weights and computes the loss.

    Subclasses implement `compute(image_embeddings, text_embeddings,
    training)` returning `(loss, logits)`: the float32 scalar loss and the
    float32 (N, N) score matrix (`logits[i, j]` scores image i against
    caption j) that the in-training metrics read. Calling the layer returns
    the loss alone. The layer always runs in float32, whatever the global
    dtype policy, so losses stay exact under mixed precision.

    `mutual_information_estimator` names the bound that
    `keras_clip.metrics.MutualInformation` reports for this objective.

    Under a `tf.distribute` strategy, objectives that use global negatives
    (InfoNCE, SigLIP) score each replica's rows against the whole global
    batch (see `keras_clip.distribute`); `local_negatives=True` restricts
    them to the replica's own examples. The returned logits are then the
    replica's square block, for in-batch metrics.

    Args:
        local_negatives: bool. Contrast only within each replica's batch.
    """

    mutual_information_estimator = "infonce"

    def __init__(self, local_negatives=False, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.local_negatives = local_negatives

    def global_batch(self, image_embeddings, text_embeddings):
        """(all images, all texts, row offset, replicas); see `distribute`."""
        if self.local_negatives:
            return image_embeddings, text_embeddings, 0, 1
        return distribute.gather_global_batch(image_embeddings, text_embeddings)

    @staticmethod
    def global_scores(all_images, all_texts, logit_scale, normalize=True):
        """The global batch's (N, N) scores, without gradient, for the metrics.

        Under tf.distribute every replica reports the metrics of the whole
        global batch; Keras sums the replicas' metric totals and counts, so
        the ratios equal one device's. (With `local_negatives=True` the
        "global" batch is the replica's own.)
        """
        return ops.stop_gradient(losses.similarity_logits(
            all_images, all_texts, logit_scale, normalize=normalize))

    def get_config(self):
        return {**super().get_config(), "local_negatives": self.local_negatives}

    def add_log_scale(self, initial_scale, trainable=True, max_scale=None,
                      name="log_logit_scale"):
        """Adds a scalar weight holding log(scale), optionally capped."""
        constraint = None if max_scale is None else MaxValue(math.log(max_scale))
        return self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(initial_scale)),
            trainable=trainable,
            constraint=constraint,
            name=name,
        )

    @staticmethod
    def clamped_exp(log_scale, max_scale=None):
        """exp(log_scale), never above `max_scale`."""
        if max_scale is not None:
            log_scale = ops.minimum(log_scale, math.log(max_scale))
        return ops.exp(log_scale)

    def compute(self, image_embeddings, text_embeddings, training=None):
        raise NotImplementedError

    def call(self, image_embeddings, text_embeddings, training=None):
        return self.compute(image_embeddings, text_embeddings, training)[0]

    def compute_output_shape(self, *args, **kwargs):
        return ()


def _check_positive(**values):
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}.")


def get_objective(identifier, **options):
    """Resolves "infonce", "jsd", "siglip", a config dict or a layer.

    Args:
        identifier: an objective name, a serialised layer or a layer.
        **options: with a name, the layer's keyword arguments (e.g.
            `symmetric=True` for "jsd").
    """
    from keras_clip.layers.infonce_loss import InfoNCELoss
    from keras_clip.layers.jsd_loss import JSDLoss
    from keras_clip.layers.siglip_loss import SigLIPLoss

    by_name = {"infonce": InfoNCELoss, "jsd": JSDLoss, "siglip": SigLIPLoss}
    if options and not isinstance(identifier, str):
        raise ValueError(
            f"Objective options {sorted(options)} go with an objective name, "
            f"not with {type(identifier).__name__}."
        )
    if isinstance(identifier, ContrastiveObjective):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in by_name:
        return by_name[identifier.lower()](**options)
    raise ValueError(
        f"Unknown objective {identifier!r}. Expected one of "
        f"{sorted(by_name)} or a keras_clip.layers loss-layer instance."
    )
