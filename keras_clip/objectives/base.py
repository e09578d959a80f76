"""The base class of the objectives: float32, the global batch, a clamped log-scale."""

import math

import keras
from keras import ops

from keras_clip.objectives import distributed as distribute
from keras_clip.objectives import functional
from keras_clip.objectives.constraints import MaxValue
from keras_clip.objectives.scores import BatchScores


@keras.saving.register_keras_serializable(package="keras_clip")
class ContrastiveObjective(keras.layers.Layer):
    """A loss layer: owns an objective's weights and computes the loss.

    Subclasses implement `compute(image_embeddings, text_embeddings,
    training)` returning `(loss, scores)`: the float32 scalar loss and the
    `BatchScores` the in-training metrics read (this replica's rows of the
    score matrix, `logits[i, j]` scoring image i against caption j; on one
    device the whole (N, N) matrix). Calling the layer returns
    the loss alone. The layer always runs in float32, whatever the global
    dtype policy, so losses stay exact under mixed precision.

    `mutual_information_estimator` names the bound that
    `keras_clip.metrics.MutualInformation` reports for this objective
    ("infonce" or "jsd"), or is None where the objective bounds none
    (SigLIP): the model then logs no "mi".

    Under a `tf.distribute` strategy, objectives that use global negatives
    (InfoNCE, SigLIP) score each replica's rows against the whole global
    batch (see `keras_clip.objectives.distributed`); `local_negatives=True` restricts
    them to the replica's own examples. The returned scores are the
    replica's rows (local x global; local x local with `local_negatives`).

    Args:
        local_negatives: bool. Contrast only within each replica's batch.
    """

    mutual_information_estimator = None

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
    def replica_scores(image_to_text, text_to_image, offset):
        """The replica's score rows for the metrics, without gradient: each
        replica reports its own queries, and Keras' sum of the replicas'
        totals and counts gives the global batch's ratios."""
        return BatchScores(
            ops.stop_gradient(image_to_text), ops.stop_gradient(text_to_image), offset
        )

    def first_chunk_scores(self, images, all_texts, offset):
        """The metrics' scores of a loss computed in chunks (`chunk_size`):
        the first chunk's pairs among themselves, without gradient; the
        whole rows against the global batch are never built."""
        first = images[: self.chunk_size]
        rows = ops.shape(first)[0]
        logits = functional.similarity_logits(first, all_texts, self.logit_scale, paired=False)
        square = ops.slice(ops.stop_gradient(logits), (0, offset), (rows, rows))
        return BatchScores.from_square(square)

    def get_config(self):
        return {**super().get_config(), "local_negatives": self.local_negatives}

    def add_log_scale(self, initial_scale, trainable=True, max_scale=None, name="log_logit_scale"):
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


def check_positive(**values):
    """Raises ValueError naming the first value that is set but not > 0."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}.")
