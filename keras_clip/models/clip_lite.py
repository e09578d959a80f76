"""CLIP-Lite: CLIP's towers, CLIP-Lite's projection blocks and the JSD objective."""

import keras

from keras_clip.models.clip import CLIP
from keras_clip.objectives import JSDLoss


@keras.saving.register_keras_serializable(package="keras_clip")
class CLIPLite(CLIP):
    """CLIP-Lite (Shrivastava et al. 2021): CLIP's towers trained with JSD.

    The projection heads are CLIP-Lite's `ProjectionBlock`s (f and g) and the
    objective is `JSDLoss` with a dot-product critic on their normalised
    outputs, so the critic scores in the same space that zero-shot and
    retrieval use, with one negative per positive.

    Args:
        image_encoder: Keras model, images -> features.
        text_encoder: Keras model, token ids -> features.
        embed_dim: int. Width of the critic's (and the embeddings') space.
        objective: a `JSDLoss` (default `JSDLoss()`), or any objective.
        projection: "mlp" (default) or "linear".
        **kwargs: as `CLIP`.

    Example:

    ```python
    model = keras_clip.CLIPLite.from_architecture("tiny-vit")
    ```
    """

    def __init__(
        self, image_encoder, text_encoder, embed_dim, objective=None, projection="mlp", **kwargs
    ):
        super().__init__(
            image_encoder,
            text_encoder,
            embed_dim,
            objective=JSDLoss() if objective is None else objective,
            projection=projection,
            **kwargs,
        )
