"""`fit`, `evaluate` and `predict` that check their arguments first.

Example:

```python
model.predict({"images": images, "token_ids": token_ids}, verbose=0)
```
"""

from keras_clip.keras_workarounds import arrays_as_untuned_dataset
from keras_clip.validation import check_array_inputs
from keras_clip.validation import check_no_targets


class CheckedCalls:
    """Mixin for `keras.Model` subclasses taking `{"images", "token_ids"}`:
    targets, sample or class weights are refused by name (a contrastive
    model learns from the pairs alone), and arrays of images and token ids
    must hold as many of each, before Keras' data adapters see them; on
    TensorFlow, arrays reach `evaluate` and `predict` as a dataset without
    tf.data autotuning (`keras_workarounds.arrays_as_untuned_dataset`)."""

    def fit(self, *args, **kwargs):
        check_no_targets("fit", args, kwargs)
        check_array_inputs(args, kwargs)
        return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        check_no_targets("evaluate", args, kwargs)
        check_array_inputs(args, kwargs)
        args, kwargs = arrays_as_untuned_dataset(args, kwargs)
        return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        check_array_inputs(args, kwargs)
        args, kwargs = arrays_as_untuned_dataset(args, kwargs)
        return super().predict(*args, **kwargs)
