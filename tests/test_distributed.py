"""Two simulated devices give the one-device loss and gradient (global negatives)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run_check(objective):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "tests.distributed_check", objective],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.backend("tensorflow", "jax")
@pytest.mark.parametrize("objective", ["infonce", "siglip"])
def test_global_negatives_equal_one_device(objective):
    report = run_check(objective)
    assert report["devices"] == 2
    assert report["global"]["loss_difference"] <= 1e-5 * report["global"]["loss"]
    assert report["global"]["gradient_difference"] <= 1e-5
    if "local" in report:  # tf.distribute: local negatives change the answer
        assert report["local"]["loss_difference"] > 1e-2
        assert report["local"]["gradient_difference"] > 1e-2
        # ... and are exactly the mean of the two halves trained apart.
        assert report["local_vs_halves"]["loss_difference"] <= 1e-5
        assert report["local_vs_halves"]["gradient_difference"] <= 1e-5


@pytest.mark.backend("tensorflow")
def test_per_replica_jsd_is_the_mean_of_the_halves():
    report = run_check("jsd")
    assert report["local_vs_halves"]["loss_difference"] <= 1e-5
    assert report["local_vs_halves"]["gradient_difference"] <= 1e-5
