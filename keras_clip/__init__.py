"""keras-clip: CLIP, CLIP-Lite and SigLIP-objective models as Keras 3 models.

The packages, from the bottom floor up (each imports only the floors below):
`utils` and `keras_workarounds`; `layers`, `objectives` and `metrics`;
`encoders` (the towers); `models` (CLIP, CLIPLite, named architectures,
preprocessing, compilation); `tokenizers`, `data`, `datasets`, `evaluation`
(zero-shot, retrieval, embed-and-search), `pretrained` (other libraries'
checkpoints) and `export` (SavedModel, ONNX); `training` (recipes, step
checkpoints, callbacks, fine-tuning); `cli`.

The model code uses `keras.ops` only; importing this package imports no
TensorFlow. The TensorFlow parts (tokenizers, the tf.data pipeline, export)
load on first use: `keras_clip.Tokenizer`, `keras_clip.tokenizers`,
`keras_clip.data`, `keras_clip.datasets`, `keras_clip.export`.
"""

import importlib

from keras_clip import encoders
from keras_clip import evaluation
from keras_clip import layers
from keras_clip import metrics
from keras_clip import models
from keras_clip import objectives
from keras_clip import pretrained
from keras_clip import training
from keras_clip.evaluation import ZeroShotClassifier
from keras_clip.evaluation import evaluate_retrieval
from keras_clip.evaluation import evaluate_zero_shot
from keras_clip.models import CLIP
from keras_clip.models import CLIPLite
from keras_clip.models import CoCa
from keras_clip.models import ImagePreprocessing
from keras_clip.training import interpolate_weights
from keras_clip.training import lock_tower

__version__ = "0.2.0"

_LAZY = {
    "Tokenizer": ("keras_clip.tokenizers", "Tokenizer"),
    "tokenizers": ("keras_clip.tokenizers", None),
    "data": ("keras_clip.data", None),
    "datasets": ("keras_clip.datasets", None),
    "export": ("keras_clip.export", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_clip' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
