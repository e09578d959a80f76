"""In-training metrics against NumPy references."""

import math

import numpy as np
import pytest

from keras_clip import metrics
from tests.helpers import to_numpy


def np_recall(logits, k):
    positives = np.diag(logits)[:, None]
    rivals = (logits >= positives).sum(axis=1) - 1
    return np.mean(rivals < k)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("direction", ["image_to_text", "text_to_image"])
def test_recall_matches_numpy_with_ties(k, direction):
    rng = np.random.default_rng(0)
    batches = [np.round(rng.normal(size=(6, 6)), 0).astype("float32") for _ in range(3)]
    metric = metrics.RetrievalRecall(k, direction)
    for logits in batches:
        metric.update_state(logits)
    stacked = [b if direction == "image_to_text" else b.T for b in batches]
    expected = np.mean([np_recall(b, k) for b in stacked])
    assert to_numpy(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_recall_counts_ties_against_the_query():
    metric = metrics.RetrievalRecall(1)
    metric.update_state(np.zeros((4, 4), "float32"))
    assert to_numpy(metric.result()) == 0.0
    metric.reset_state()
    metric.update_state(np.eye(4, dtype="float32"))
    assert to_numpy(metric.result()) == 1.0


def test_mutual_information_estimates():
    uninformative = np.zeros((8, 8), "float32")
    for estimator in ("infonce", "jsd"):
        metric = metrics.MutualInformation(estimator)
        metric.update_state(uninformative)
        assert to_numpy(metric.result()) == pytest.approx(0.0, abs=1e-6)
    perfect = 50.0 * (2.0 * np.eye(8, dtype="float32") - 1.0)
    infonce = metrics.MutualInformation("infonce")
    infonce.update_state(perfect)
    assert to_numpy(infonce.result()) == pytest.approx(math.log(8), abs=1e-4)
    jsd = metrics.MutualInformation("jsd")
    jsd.update_state(perfect)
    assert to_numpy(jsd.result()) == pytest.approx(math.log(4), abs=1e-4)


def test_metric_errors_and_config():
    with pytest.raises(ValueError, match="Unknown direction"):
        metrics.RetrievalRecall(direction="sideways")
    with pytest.raises(ValueError, match="Unknown estimator"):
        metrics.MutualInformation("nwj")
    metric = metrics.RetrievalRecall(5, "text_to_image")
    revived = metrics.RetrievalRecall.from_config(metric.get_config())
    assert (revived.k, revived.direction, revived.name) == (5, "text_to_image", "t2i_recall@5")
