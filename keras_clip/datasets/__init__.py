"""Datasets that ship with keras-clip (generated offline)."""

from keras_clip.datasets import shapes
