"""In-training metrics read off the objective's scores.

`keras_clip.CLIP` updates these from its `compute_loss`, so `fit` and
`evaluate` report them next to the loss. Both take the score matrix
`logits[i, j]` (image i against caption j, matching pairs on the diagonal),
or a `BatchScores`: a replica's rows of it under `tf.distribute`, each
query counted by the replica that owns it
(`keras_clip.objectives.scores`).
"""

import math

import keras
from keras import ops

from keras_clip.objectives import functional
from keras_clip.objectives.scores import as_batch_scores

DIRECTIONS = ("image_to_text", "text_to_image")
ESTIMATORS = ("infonce", "jsd")


@keras.saving.register_keras_serializable(package="keras_clip")
class RetrievalRecall(keras.metrics.Mean):
    """In-batch recall@k: the share of queries whose match ranks in the top k.

    Ties count against the query: a query is a hit only if fewer than k
    other candidates score at least as high as its match, so a collapsed
    model (all scores equal) scores 0, not 1.

    Args:
        k: int. How many top candidates count as a hit.
        direction: "image_to_text" (each image ranks the batch's captions)
            or "text_to_image".

    Example:

    ```python
    metric = RetrievalRecall(k=1, direction="text_to_image")
    metric.update_state(logits)
    metric.result()
    ```
    """

    def __init__(self, k=1, direction="image_to_text", name=None, **kwargs):
        if direction not in DIRECTIONS:
            raise ValueError(f"Unknown direction {direction!r}; expected one of {DIRECTIONS}.")
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}.")
        short = "i2t" if direction == "image_to_text" else "t2i"
        super().__init__(name=name or f"{short}_recall@{k}", **kwargs)
        self.k = k
        self.direction = direction

    def update_state(self, scores, sample_weight=None):
        scores = as_batch_scores(scores)
        rows = scores.rows(self.direction)
        positives = ops.expand_dims(scores.matching(self.direction), 1)
        # Candidates scoring at least as high as the match, the match excluded.
        rivals = ops.sum(ops.cast(rows >= positives, "float32"), axis=1) - 1.0
        hits = ops.cast(rivals < self.k, "float32")
        super().update_state(hits)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "direction": self.direction}


@keras.saving.register_keras_serializable(package="keras_clip")
class MutualInformation(keras.metrics.Mean):
    """The value of a mutual-information lower bound, in nats.

    - "infonce": log N - L_InfoNCE (symmetric), the bound CLIP maximises;
      at most log N.
    - "jsd": log 4 - L_JSD with one rolled negative per positive, i.e. the
      estimate of 2 * JSD(p(x, y) || p(x) p(y)); at most log 4.

    Both are 0 for an uninformative critic (all scores equal).

    Args:
        estimator: "infonce" or "jsd".

    Example:

    ```python
    metric = MutualInformation("infonce")
    metric.update_state(logits)
    ```
    """

    def __init__(self, estimator="infonce", name="mutual_information", **kwargs):
        if estimator not in ESTIMATORS:
            raise ValueError(f"Unknown estimator {estimator!r}; expected one of {ESTIMATORS}.")
        super().__init__(name=name, **kwargs)
        self.estimator = estimator

    def update_state(self, scores, sample_weight=None):
        scores = as_batch_scores(scores)
        image_to_text = scores.rows("image_to_text")
        if self.estimator == "infonce":
            size = ops.cast(ops.shape(image_to_text)[1], "float32")  # the whole batch
            value = ops.log(size) - functional.infonce_from_row_logits(
                image_to_text, scores.rows("text_to_image"), scores.offset
            )
        else:
            value = math.log(4.0) - functional.jsd_from_row_logits(image_to_text, scores.offset)
        # Weighted by the rows (a smaller last batch counts less, an empty
        # one not at all; under tf.distribute Keras sums the replicas').
        rows = ops.cast(ops.shape(image_to_text)[0], "float32")
        super().update_state(ops.where(rows > 0, value, 0.0), sample_weight=rows)

    def get_config(self):
        return {**super().get_config(), "estimator": self.estimator}
