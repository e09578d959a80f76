"""Activations used by CLIP's towers."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
def quick_gelu(x):
    """OpenAI CLIP's GELU approximation: x * sigmoid(1.702 * x)."""
    return x * ops.sigmoid(1.702 * x)


def get_activation(name):
    """Resolves "quick_gelu" or any Keras activation name."""
    if name == "quick_gelu":
        return quick_gelu
    return keras.activations.get(name)
