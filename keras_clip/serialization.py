"""Config helpers shared by the subclassed models."""

import keras


def base_model_config(model):
    """The constructor arguments every keras.Model takes: name, trainable, dtype."""
    return {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": keras.dtype_policies.serialize(model.dtype_policy),
    }
