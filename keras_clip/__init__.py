"""keras-clip: CLIP, CLIP-Lite and SigLIP-objective models as Keras 3 models.

The model, encoders, objectives and metrics use `keras.ops` only; importing
this package imports no TensorFlow. The TensorFlow parts (tokenizers, the
tf.data pipeline, SavedModel export, the shared training helpers) load on
first use: `keras_clip.Tokenizer`, `keras_clip.data`, `keras_clip.export`,
`keras_clip.tokenizers`, `keras_clip.training`, `keras_clip.datasets`.
"""

import importlib

from keras_clip import callbacks
from keras_clip import checkpoints
from keras_clip import encoders
from keras_clip import evaluation
from keras_clip import fine_tuning
from keras_clip import layers
from keras_clip import metrics
from keras_clip import models
from keras_clip import objectives
from keras_clip import pretrained
from keras_clip.evaluation import ZeroShotClassifier
from keras_clip.evaluation import evaluate_retrieval
from keras_clip.evaluation import evaluate_zero_shot
from keras_clip.fine_tuning import interpolate_weights
from keras_clip.fine_tuning import lock_tower
from keras_clip.models import CLIP
from keras_clip.models import CLIPLite

__version__ = "0.2.0"

_LAZY = {
    "Tokenizer": ("keras_clip.tokenizers", "Tokenizer"),
    "tokenizers": ("keras_clip.tokenizers", None),
    "data": ("keras_clip.data", None),
    "datasets": ("keras_clip.datasets", None),
    "export": ("keras_clip.export", None),
    "embeddings": ("keras_clip.embeddings", None),
    "onnx_export": ("keras_clip.onnx_export", None),
    "training": ("keras_clip.training", None),
    "losses": ("keras_clip.losses", None),  # deprecated alias
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_clip' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
