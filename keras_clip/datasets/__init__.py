"""Small datasets that need no download: generated shapes, and
scikit-learn's handwritten digits."""

from keras_clip.datasets import digits
from keras_clip.datasets import shapes
