"""SigLIP's pairwise sigmoid objective as a loss layer."""

import keras
from keras import ops

from keras_clip.objectives import functional
from keras_clip.objectives.base import ContrastiveObjective
from keras_clip.objectives.base import check_positive
from keras_clip.objectives.chunked import chunked_sigmoid_loss
from keras_clip.objectives.scores import BatchScores


@keras.saving.register_keras_serializable(package="keras_clip")
class SigLIPLoss(ContrastiveObjective):
    """Sigmoid loss for language-image pre-training (Zhai et al. 2023).

    logits = s * normalize(I) @ normalize(T).T + b; loss =
    -sum(log_sigmoid(z * logits)) / N with z = +1 on the diagonal, -1
    elsewhere. s is learned in log space from `init_logit_scale`, b from
    `init_logit_bias`.

    Args:
        init_logit_scale: float. Initial s (SigLIP: 10).
        init_logit_bias: float. Initial b (SigLIP: -10).
        local_negatives: bool. Under tf.distribute, contrast only within each
            replica's batch (default: against the whole global batch).
        chunk_size: int or None. Compute the loss `chunk_size` rows at a time
            with a hand-written gradient (`keras_clip.objectives.chunked`), so
            the memory is O(chunk_size x global batch) instead of the whole
            (local x global) logits; the in-training metrics then score the
            first `chunk_size` pairs among themselves.

    Example:

    ```python
    loss = SigLIPLoss()(image_embeddings, text_embeddings)
    ```
    """

    def __init__(self, init_logit_scale=10.0, init_logit_bias=-10.0, chunk_size=None, **kwargs):
        super().__init__(**kwargs)
        check_positive(init_logit_scale=init_logit_scale)
        if chunk_size is not None:
            check_positive(chunk_size=chunk_size)
        self.init_logit_scale = init_logit_scale
        self.init_logit_bias = init_logit_bias
        self.chunk_size = chunk_size

    def build(self, input_shape=None):
        self.log_logit_scale = self.add_log_scale(self.init_logit_scale)
        self.logit_bias = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.init_logit_bias),
            name="logit_bias",
        )

    @property
    def logit_scale(self):
        return self.clamped_exp(self.log_logit_scale)

    def compute(self, image_embeddings, text_embeddings, training=None):
        all_images, all_texts, offset, replicas = self.global_batch(
            image_embeddings, text_embeddings
        )
        if self.chunk_size:
            return self._compute_in_chunks(image_embeddings, all_texts, offset)
        logits = (
            functional.similarity_logits(
                image_embeddings, all_texts, self.logit_scale, paired=replicas == 1
            )
            + self.logit_bias
        )
        loss = functional.siglip_from_logits(logits, offset)
        if replicas == 1:
            return loss, BatchScores.from_square(ops.stop_gradient(logits))
        text_to_image = functional.similarity_logits(
            text_embeddings, all_images, self.logit_scale, paired=False
        )
        return loss, self.replica_scores(logits, text_to_image + self.logit_bias, offset)

    def _compute_in_chunks(self, images, all_texts, offset):
        normalize = functional.l2_normalize
        loss = chunked_sigmoid_loss(
            normalize(images),
            normalize(all_texts),
            self.logit_scale,
            self.logit_bias,
            offset,
            self.chunk_size,
        )
        return loss, self.first_chunk_scores(images, all_texts, offset)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "init_logit_scale": self.init_logit_scale,
                "init_logit_bias": self.init_logit_bias,
                "chunk_size": self.chunk_size,
            }
        )
        return config
