"""CLIP models and their named shapes."""

from keras_clip.models.architectures import ARCHITECTURES
from keras_clip.models.clip import CLIP
from keras_clip.models.clip_lite import CLIPLite
from keras_clip.models.optimizer import default_optimizer
