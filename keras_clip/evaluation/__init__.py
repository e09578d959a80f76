"""Evaluation: zero-shot classification, retrieval and linear probes."""

from keras_clip.evaluation.linear_probe import fit_linear_probe
from keras_clip.evaluation.linear_probe import linear_probe
from keras_clip.evaluation.retrieval import evaluate_retrieval
from keras_clip.evaluation.retrieval import retrieval_metrics
from keras_clip.evaluation.retrieval import retrieval_ranks
from keras_clip.evaluation.zero_shot import DEFAULT_TEMPLATES
from keras_clip.evaluation.zero_shot import ZeroShotClassifier
from keras_clip.evaluation.zero_shot import evaluate_zero_shot
