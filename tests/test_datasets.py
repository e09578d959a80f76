"""The generated shapes dataset."""

import numpy as np
import pytest

from keras_clip.datasets import shapes


def test_same_seed_same_data_and_consistent_labels():
    a, b = shapes.load(20, image_size=32, seed=3), shapes.load(20, image_size=32, seed=3)
    np.testing.assert_array_equal(a["images"], b["images"])
    assert a["captions"] == b["captions"]
    assert a["images"].shape == (20, 32, 32, 3) and a["images"].dtype == np.uint8
    for caption, label, color, shape in zip(a["captions"], a["labels"], a["colors"], a["shapes"]):
        assert shapes.CLASS_NAMES[label] == f"{color} {shape}"
        assert color in caption and shape in caption
    assert not np.array_equal(a["images"], shapes.load(20, 32, seed=4)["images"])


def test_shape_pixels_have_the_named_colour():
    data = shapes.load(10, image_size=64, seed=0)
    for image, color in zip(data["images"], data["colors"]):
        target = np.array(shapes.COLORS[color], "float32")
        distance = np.linalg.norm(image.astype("float32") - target, axis=-1)
        assert (distance < 60).sum() > 20  # the shape is there, in its colour


def test_classes_restrict_the_draw_and_errors():
    data = shapes.load(30, image_size=32, classes=["red circle", "blue square"])
    assert set(np.asarray(data["class_names"])[data["labels"]]) <= {"red circle", "blue square"}
    with pytest.raises(ValueError, match="Unknown classes"):
        shapes.load(5, classes=["pink hexagon"])
    with pytest.raises(ValueError, match="num_examples"):
        shapes.load(0)
