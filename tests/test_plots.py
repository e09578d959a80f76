"""The evaluation plots: labelled, readable, and showing the right classes."""

import numpy as np
import pytest

from keras_clip.evaluation.plots import most_confused_classes
from keras_clip.evaluation.plots import row_shares
from keras_clip.evaluation.plots import save_confusion
from keras_clip.evaluation.plots import save_similarity

pytestmark = pytest.mark.backend("tensorflow")  # NumPy and matplotlib only


def test_row_shares_divide_each_true_class_by_its_count():
    shares = row_shares([[3, 1], [0, 0]])
    np.testing.assert_allclose(shares, [[0.75, 0.25], [0.0, 0.0]])


def test_most_confused_classes_keep_those_with_the_largest_off_diagonal_shares():
    confusion = np.diag([10, 10, 10, 10, 10]).astype(float)
    confusion[1, 3] = 5  # class 1 predicted as 3
    confusion[4, 0] = 2  # class 4 predicted as 0
    assert most_confused_classes(confusion, 5).tolist() == [0, 1, 2, 3, 4]
    assert most_confused_classes(confusion, 2).tolist() == [1, 3]
    assert most_confused_classes(confusion, 4).tolist() == [0, 1, 3, 4]


def test_confusion_png_is_a_readable_labelled_figure(tmp_path):
    from PIL import Image

    names = [f"class {i}" for i in range(40)]
    confusion = np.eye(40) * 9 + np.random.default_rng(0).integers(0, 2, (40, 40))
    path = save_confusion(confusion, names, str(tmp_path / "confusion.png"), max_classes=25)
    width, height = Image.open(path).size
    assert width >= 600 and height >= 600  # not a grid of 8-pixel cells
    small = save_confusion(np.eye(3), ["cat", "dog", "bird"], str(tmp_path / "small.png"))
    assert min(Image.open(small).size) >= 600
    with pytest.raises(ValueError, match="needs 3 class names"):
        save_confusion(np.eye(3), ["cat"], str(tmp_path / "bad.png"))


def test_similarity_png_is_written(tmp_path):
    from PIL import Image

    path = save_similarity(np.eye(4), str(tmp_path / "similarity.png"))
    assert min(Image.open(path).size) >= 600
