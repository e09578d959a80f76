"""Helpers every floor of the package may use: progress reporting, optional
dependencies."""

from keras_clip.utils.dependencies import require
from keras_clip.utils.progress import ProgressBar
