"""Config helpers shared by the subclassed models."""

import keras


def base_model_config(model):
    """The constructor arguments every keras.Model takes: name, trainable, dtype."""
    return {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": keras.dtype_policies.serialize(model.dtype_policy),
    }


class ExplicitSignatures:
    """Mixin for models with integer inputs: no derived SavedModel signature.

    Keras' TensorFlow backend derives a default SavedModel signature for a
    subclassed model that types every input as float32, which breaks on
    token ids when the model is exported or saved as a SavedModel. The
    export module (`keras_clip.export`) writes explicit signatures instead.
    """

    @property
    def _default_save_signature(self):
        return None
