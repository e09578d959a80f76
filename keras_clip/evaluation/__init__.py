"""Evaluation: zero-shot classification."""

from keras_clip.evaluation.zero_shot import DEFAULT_TEMPLATES
from keras_clip.evaluation.zero_shot import ZeroShotClassifier
