"""Each example runs in its smoke mode on the backends it supports."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *args, backend=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if backend:
        env["KERAS_BACKEND"] = backend
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.backend("tensorflow")
def test_distributed_tf_example():
    report = run_example("distributed_tf.py", "--smoke", "--simulated-devices", "2")
    assert report["replicas"] == 2 and report["global_batch_size"] == 64
    assert 0 < report["final_loss"] < 10


@pytest.mark.backend("jax")
def test_distributed_jax_example():
    report = run_example("distributed_jax.py", "--smoke", "--simulated-devices", "2")
    assert report["devices"] == 2 and report["global_batch_size"] == 64
    assert 0 < report["final_loss"] < 10
