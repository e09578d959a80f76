"""CLIP's symmetric InfoNCE objective as a loss layer."""

import keras
from keras import ops

from keras_clip.objectives import functional
from keras_clip.objectives.base import ContrastiveObjective
from keras_clip.objectives.base import check_positive
from keras_clip.objectives.chunked import chunked_infonce
from keras_clip.objectives.scores import BatchScores


@keras.saving.register_keras_serializable(package="keras_clip")
class InfoNCELoss(ContrastiveObjective):
    """Symmetric InfoNCE with CLIP's learnable, clamped logit scale.

    logits = s * normalize(I) @ normalize(T).T with s = exp(t), t a weight
    initialised at log(1 / temperature) and kept at most log(max_logit_scale)
    (by a constraint after every step, and by a clamp in the forward pass);
    loss = (CE(logits, arange N) + CE(logits.T, arange N)) / 2.

    Args:
        temperature: float. Initial temperature (CLIP: 0.07).
        learnable_temperature: bool. Whether t is trained.
        max_logit_scale: float. Upper bound on s (CLIP: 100).
        label_smoothing: float in [0, 1).
        local_negatives: bool. Under tf.distribute, contrast only within each
            replica's batch (default: against the whole global batch).
        chunk_size: int or None. Compute the loss `chunk_size` rows at a time
            with a hand-written gradient (`keras_clip.objectives.chunked`), so the
            memory is O(chunk_size x global batch) instead of the whole
            (local x global) logits; the in-training metrics then score the
            first `chunk_size` pairs among themselves. Needs
            label_smoothing=0.

    Example:

    ```python
    loss_layer = InfoNCELoss()
    loss = loss_layer(image_embeddings, text_embeddings)
    ```
    """

    mutual_information_estimator = "infonce"

    def __init__(
        self,
        temperature=0.07,
        learnable_temperature=True,
        max_logit_scale=100.0,
        label_smoothing=0.0,
        chunk_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive(temperature=temperature, max_logit_scale=max_logit_scale)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.temperature = temperature
        self.learnable_temperature = learnable_temperature
        self.max_logit_scale = max_logit_scale
        self.label_smoothing = label_smoothing
        if chunk_size is not None:
            check_positive(chunk_size=chunk_size)
            if label_smoothing:
                raise ValueError("chunk_size needs label_smoothing=0.")
        self.chunk_size = chunk_size

    def build(self, input_shape=None):
        self.log_logit_scale = self.add_log_scale(
            1.0 / self.temperature,
            trainable=self.learnable_temperature,
            max_scale=self.max_logit_scale,
        )

    @property
    def logit_scale(self):
        return self.clamped_exp(self.log_logit_scale, self.max_logit_scale)

    def compute(self, image_embeddings, text_embeddings, training=None):
        all_images, all_texts, offset, replicas = self.global_batch(
            image_embeddings, text_embeddings
        )
        if self.chunk_size:
            return self._compute_in_chunks(
                image_embeddings, text_embeddings, all_images, all_texts, offset
            )
        image_to_text = functional.similarity_logits(
            image_embeddings, all_texts, self.logit_scale, paired=replicas == 1
        )
        if replicas == 1:
            loss = functional.infonce_from_logits(image_to_text, self.label_smoothing)
            return loss, BatchScores.from_square(ops.stop_gradient(image_to_text))
        text_to_image = functional.similarity_logits(
            text_embeddings, all_images, self.logit_scale, paired=False
        )
        loss = functional.infonce_from_row_logits(
            image_to_text, text_to_image, offset, self.label_smoothing
        )
        return loss, self.replica_scores(image_to_text, text_to_image, offset)

    def _compute_in_chunks(self, images, texts, all_images, all_texts, offset):
        normalize = functional.l2_normalize
        loss = chunked_infonce(
            normalize(images),
            normalize(texts),
            normalize(all_images),
            normalize(all_texts),
            self.logit_scale,
            offset,
            self.chunk_size,
        )
        return loss, self.first_chunk_scores(images, all_texts, offset)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "chunk_size": self.chunk_size,
                "temperature": self.temperature,
                "learnable_temperature": self.learnable_temperature,
                "max_logit_scale": self.max_logit_scale,
                "label_smoothing": self.label_smoothing,
            }
        )
        return config
