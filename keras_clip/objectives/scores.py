"""`BatchScores`: what an objective hands the in-training metrics.

Under a `tf.distribute` strategy each replica holds n of the global batch's
N pairs and has already scored its own images against all N captions (and,
for symmetric objectives, its captions against all N images) for the loss.
The metrics read those local rows: each query is counted once, by the
replica that owns it, and Keras' sum of the replicas' totals and counts
gives the global batch's ratio, as on one device, with no replica building
the whole N x N matrix. On one device (or JAX's sharded global program) the
rows are the whole matrix and the offset 0.

Example:

```python
scores = BatchScores.from_square(logits)   # (N, N): image i against caption j
scores.matching("image_to_text")           # the diagonal
```
"""

import collections

from keras import ops


class BatchScores(collections.namedtuple("BatchScores", "image_to_text text_to_image offset")):
    """A replica's rows of the batch's score matrix.

    Fields:
        image_to_text: float (n, N): this replica's n images against all N
            captions.
        text_to_image: float (n, N): its n captions against all N images.
        offset: int or int scalar tensor: the global index of the first
            row; row i's match is column offset + i.
    """

    __slots__ = ()

    @classmethod
    def from_square(cls, logits):
        """The scores of a whole (N, N) matrix (`logits[i, j]`: image i
        against caption j)."""
        logits = ops.cast(logits, "float32")
        return cls(logits, ops.transpose(logits), 0)

    def rows(self, direction):
        """The query rows of "image_to_text" or "text_to_image", float32."""
        return ops.cast(getattr(self, direction), "float32")

    def matching(self, direction):
        """Each row's score for its own match, (n,)."""
        rows = self.rows(direction)
        columns = ops.arange(ops.shape(rows)[0]) + self.offset
        return ops.take_along_axis(rows, columns[:, None], axis=1)[:, 0]


def as_batch_scores(scores):
    """`scores` as `BatchScores` (a square matrix is the whole batch's)."""
    return scores if isinstance(scores, BatchScores) else BatchScores.from_square(scores)
