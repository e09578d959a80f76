"""A weight constraint that caps a variable from above."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
class MaxValue(keras.constraints.Constraint):
    """Clips a weight to at most `max_value` after every optimizer step.

    Used for CLIP's log logit scale, which OpenAI clamps at log(100).

    Args:
        max_value: float. The largest value the weight may take.

    Example:

    ```python
    constraint = MaxValue(4.6052)
    constraint(keras.ops.convert_to_tensor(9.0))  # 4.6052
    ```
    """

    def __init__(self, max_value):
        self.max_value = float(max_value)

    def __call__(self, w):
        return ops.minimum(w, ops.cast(self.max_value, w.dtype))

    def get_config(self):
        return {"max_value": self.max_value}
