"""Two simulated devices give the one-device loss and gradient (global negatives).

JSD (CLIP-Lite) runs with `local_negatives=False` in the global case: its
rolled negative then comes from the global batch.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


OBJECTIVES = ["infonce", "infonce-chunked", "siglip", "jsd"]


@pytest.fixture(scope="module")
def reports():
    """All objectives checked in one process (one engine start-up)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.distributed_check", *OBJECTIVES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.backend("tensorflow", "jax")
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_global_negatives_equal_one_device(reports, objective):
    report = reports[objective]
    assert report["devices"] == 2
    # tf.distribute: as a graph and eagerly (there every shape is static;
    # JSD's global negatives once refused their own 4 x 8 logits there).
    for mode in ("global", "global_eager"):
        if mode not in report:
            continue
        assert report[mode]["loss_difference"] <= 1e-5 * report[mode]["loss"]
        assert report[mode]["gradient_difference"] <= 1e-5
        if objective != "infonce-chunked":  # chunked: metrics on the first chunk only
            assert report[mode]["metric_difference"] <= 1e-5  # recall@1 and MI too
    if "local" in report:  # tf.distribute: local negatives change the answer
        # (JSD's single rolled negative changes for 2 of 8 pairs only.)
        assert report["local"]["loss_difference"] > 1e-3
        assert report["local"]["gradient_difference"] > 1e-3
        # ... and are exactly the mean of the two halves trained apart.
        assert report["local_vs_halves"]["loss_difference"] <= 1e-5
        assert report["local_vs_halves"]["gradient_difference"] <= 1e-5


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.backend("tensorflow")
def test_multi_worker_mirrored_strategy_two_processes_match_one_device(tmp_path):
    ports = [str(p) for p in _free_ports(2)]
    outputs = [str(tmp_path / f"worker{i}.npz") for i in range(2)]
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.multiworker_check", str(i), *ports, outputs[i]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
    results = [np.load(path) for path in outputs]
    # Keras 3.15's bugs that keras_clip.keras_workarounds works around: when
    # plain Keras' fit runs here, Keras has fixed one and its workaround can go.
    for path in outputs:
        with open(path + ".bugs.json") as f:
            bugs = json.load(f)
        assert bugs["build"] != "fit ran" and bugs["logs"] != "fit ran", bugs
    assert [int(r["replicas"]) for r in results] == [2, 2]
    assert np.isfinite(results[0]["loss"])
    # Global negatives across the two processes: one device's result.
    assert abs(float(results[0]["loss"]) - float(results[0]["single_loss"])) < 1e-5
    assert float(results[0]["relative_difference"]) < 1e-5
    weights = [[r[f"arr_{i}"] for i in range(len(r.files) - 4)] for r in results]
    assert len(weights[0]) > 10
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
