"""The contrastive objectives: loss layers that own their weights.

`InfoNCELoss` (CLIP), `JSDLoss` (CLIP-Lite, with `PriorDiscriminator`) and
`SigLIPLoss` share `ContrastiveObjective` (float32, the global batch under
tf.distribute, a clamped learnable log-scale). `functional` holds their pure
`keras.ops` forms and `chunked` the row-blocked InfoNCE. `get` resolves a
name, a config or a layer.

Example:

```python
from keras_clip import objectives

objective = objectives.get("jsd", symmetric=True)
loss = objective(image_embeddings, text_embeddings)  # builds the layer, then scores
```
"""

import keras

from keras_clip.objectives import functional
from keras_clip.objectives.base import ContrastiveObjective
from keras_clip.objectives.constraints import MaxValue
from keras_clip.objectives.infonce import InfoNCELoss
from keras_clip.objectives.jsd import JSDLoss
from keras_clip.objectives.prior import PriorDiscriminator
from keras_clip.objectives.siglip import SigLIPLoss

OBJECTIVES = {"infonce": InfoNCELoss, "jsd": JSDLoss, "siglip": SigLIPLoss}


def get(identifier, **options):
    """Resolves an objective name, a serialised layer or a layer.

    Args:
        identifier: "infonce", "jsd" or "siglip" (any case), a config dict
            from `keras.saving.serialize_keras_object`, or a
            `ContrastiveObjective` (returned as it is).
        **options: with a name, the layer's keyword arguments (e.g.
            `symmetric=True` for "jsd").

    Returns:
        A `ContrastiveObjective`.

    Example:

    ```python
    get("infonce", temperature=0.05)
    ```
    """
    if options and not isinstance(identifier, str):
        raise ValueError(
            f"Objective options {sorted(options)} go with an objective name, "
            f"not with {type(identifier).__name__}."
        )
    if isinstance(identifier, ContrastiveObjective):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in OBJECTIVES:
        return OBJECTIVES[identifier.lower()](**options)
    raise ValueError(
        f"Unknown objective {identifier!r}. Expected one of "
        f"{sorted(OBJECTIVES)} or a keras_clip.objectives layer instance."
    )
