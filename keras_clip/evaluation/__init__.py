"""Evaluation: zero-shot classification and image-text retrieval."""

from keras_clip.evaluation.retrieval import evaluate_retrieval
from keras_clip.evaluation.retrieval import retrieval_metrics
from keras_clip.evaluation.retrieval import retrieval_ranks
from keras_clip.evaluation.zero_shot import DEFAULT_TEMPLATES
from keras_clip.evaluation.zero_shot import ZeroShotClassifier
from keras_clip.evaluation.zero_shot import evaluate_zero_shot
