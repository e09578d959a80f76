"""Deprecated alias of `keras_clip.objectives.functional` (goes in 0.3)."""

import sys
import warnings

from keras_clip.objectives import functional

warnings.warn(
    "keras_clip.losses is deprecated and goes in 0.3; use keras_clip.objectives.functional.",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = functional
