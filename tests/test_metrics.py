"""In-training metrics: hand-worked values, and replica rows summed as tf.distribute does."""

import math

import numpy as np
import pytest

from keras_clip import metrics
from tests.helpers import to_numpy

# Image i against caption j. Worked by hand: image 0's match (3) beats 1 and
# 2; image 1's (2) ties caption 0's 2 (a tie counts against it); image 2's
# (4) loses to 5. Caption 0's match (3) beats 2 and 0; caption 1's (2)
# loses to 5; caption 2's (4) beats 2 and 0.
HAND = np.array([[3, 1, 2], [2, 2, 0], [0, 5, 4]], "float32")
HAND_RECALL = {("image_to_text", 1): 1 / 3, ("image_to_text", 2): 1.0}
HAND_RECALL.update({("text_to_image", 1): 2 / 3, ("text_to_image", 2): 1.0})


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("direction", ["image_to_text", "text_to_image"])
def test_recall_of_a_hand_worked_batch(k, direction):
    metric = metrics.RetrievalRecall(k, direction)
    metric.update_state(HAND)
    assert to_numpy(metric.result()) == pytest.approx(HAND_RECALL[direction, k], abs=1e-6)


@pytest.mark.parametrize(
    "make", [lambda: metrics.RetrievalRecall(1, "text_to_image"), lambda: metrics.MutualInformation(),
             lambda: metrics.MutualInformation("jsd"), lambda: metrics.RetrievalRecall(2)],
)  # fmt: skip
def test_replica_rows_summed_equal_the_whole_batch(make):
    """What tf.distribute does: each replica updates from its own rows
    (local x global, with its offset) and Keras sums the replicas' totals
    and counts; the ratio is the whole batch's."""
    from keras_clip.objectives.scores import BatchScores

    logits = np.round(np.random.default_rng(0).normal(size=(6, 6)), 1).astype("float32")
    whole = make()
    whole.update_state(logits)
    replicas = [make() for _ in range(3)]
    for replica, rows in zip(replicas, range(0, 6, 2)):
        replica.update_state(BatchScores(logits[rows : rows + 2], logits.T[rows : rows + 2], rows))
    total = sum(float(to_numpy(r.total)) for r in replicas)
    count = sum(float(to_numpy(r.count)) for r in replicas)
    assert total / count == pytest.approx(float(to_numpy(whole.result())), abs=1e-5)
    assert count == pytest.approx(float(to_numpy(whole.count)))


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
