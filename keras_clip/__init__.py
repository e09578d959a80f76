"""keras-clip: CLIP and CLIP-Lite as Keras 3 multi-backend models.

The model, encoders, losses and metrics use `keras.ops` only; importing
this package imports no TensorFlow. The tensorflow-text `Tokenizer` and the
tf.data / export modules load TensorFlow when first used.
"""

from keras_clip import callbacks
from keras_clip import encoders
from keras_clip import evaluation
from keras_clip import layers
from keras_clip import losses
from keras_clip import metrics
from keras_clip import models
from keras_clip import pretrained
from keras_clip.evaluation import ZeroShotClassifier
from keras_clip.evaluation import evaluate_retrieval
from keras_clip.evaluation import evaluate_zero_shot
from keras_clip.models import CLIP
from keras_clip.models import CLIPLite

__version__ = "0.1.0"

_LAZY = {
    "Tokenizer": ("keras_clip.tokenizer", "Tokenizer"),
    "datasets": ("keras_clip.datasets", None),
    "data": ("keras_clip.data", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_clip' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
