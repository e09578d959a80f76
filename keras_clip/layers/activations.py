"""Activations used by CLIP's towers."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clip")
def quick_gelu(x):
    """OpenAI CLIP's GELU approximation: x * sigmoid(1.702 * x)."""
    return x * ops.sigmoid(1.702 * x)


@keras.saving.register_keras_serializable(package="keras_clip")
def gelu_tanh(x):
    """GELU with the tanh approximation (SigLIP's `gelu_pytorch_tanh`)."""
    return keras.activations.gelu(x, approximate=True)


def get_activation(name):
    """Resolves "quick_gelu", "gelu_tanh" or any Keras activation name."""
    if name == "quick_gelu":
        return quick_gelu
    if name == "gelu_tanh":
        return gelu_tanh
    return keras.activations.get(name)
