"""`fit`, `evaluate` and `predict` that check their arguments first.

Example:

```python
model.predict({"images": images, "token_ids": token_ids}, verbose=0)
```
"""

import sys

from keras_clip.keras_workarounds import arrays_as_untuned_dataset
from keras_clip.keras_workarounds import without_false_out_of_data_warning
from keras_clip.utils.checks import call_inputs
from keras_clip.utils.checks import check_array_inputs
from keras_clip.utils.checks import check_no_targets


class CheckedCalls:
    """Mixin for `keras.Model` subclasses taking `{"images", "token_ids"}`:
    targets, sample or class weights are refused by name (a contrastive
    model learns from the pairs alone), and arrays of images and token ids
    must hold as many of each, before Keras' data adapters see them; on
    TensorFlow, arrays reach `evaluate` and `predict` as a dataset without
    tf.data autotuning (`keras_workarounds.arrays_as_untuned_dataset`).

    A `tf.data.Dataset` is `fit` as it comes (`shuffle` defaults to False:
    Keras' default of True cannot apply to a dataset and only warns), and
    input of unknown length runs without Keras' false "ran out of data"
    warning (`keras_workarounds.without_false_out_of_data_warning`)."""

    def fit(self, *args, **kwargs):
        check_no_targets("fit", args, kwargs)
        check_array_inputs(args, kwargs)
        if _is_tf_dataset(call_inputs(args, kwargs)):
            kwargs.setdefault("shuffle", False)
        with without_false_out_of_data_warning(kwargs):
            return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        check_no_targets("evaluate", args, kwargs)
        check_array_inputs(args, kwargs)
        args, kwargs = arrays_as_untuned_dataset(args, kwargs)
        with without_false_out_of_data_warning(kwargs):
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        check_array_inputs(args, kwargs)
        args, kwargs = arrays_as_untuned_dataset(args, kwargs)
        return super().predict(*args, **kwargs)


def _is_tf_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (TensorFlow is not imported here:
    a dataset exists only if TensorFlow already is)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)
