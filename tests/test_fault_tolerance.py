"""A training process killed with SIGKILL, at any moment and as often as it
takes, resumes at its last saved step and ends as an uninterrupted run."""

import json
import os
import random
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_clip  # noqa: F401 (registers the classes model.keras names)
from keras_clip.training import checkpoints
from tests import webdataset_shards

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVERY = 2  # --save-every-steps
STEPS_PER_EPOCH = 9  # 72 usable pairs in the shards, batches of 8
EPOCHS = 3

# One test a lane, to keep the suite short: the checkpoint and resume logic
# is Keras-only (backend-neutral) and the data pipeline is tf.data on every
# backend. The PyTorch lane (the shortest) takes the many kills.


def _train(kill, shards, work, name, log=None):
    args = [sys.executable, "-m", "tests.crash_check", kill, "train", shards]
    args += ["--architecture", "tiny-vit", "--epochs", str(EPOCHS), "--batch-size", "8"]
    args += ["--vocabulary-size", "100", "--context-length", "16", "--seed", "3"]
    args += ["--horizontal-flip", "--no-xla", "--verbose", "0"]
    args += ["--output", os.path.join(work, name)]
    args += ["--checkpoint-dir", os.path.join(work, name + "_checkpoints")]
    args += ["--save-every-steps", str(EVERY)]
    env = dict(os.environ, STEP_LOG=log or "")
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)


def _weights(work, name):
    return keras.saving.load_model(os.path.join(work, name, "model.keras")).get_weights()


def _epochs_run(work, name):
    with open(os.path.join(work, name, "train_report.json")) as f:
        return len(json.load(f)["history"]["loss"])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run on webdataset shards: (shards, work folder)."""
    work = str(tmp_path_factory.mktemp("runs"))
    shards = os.path.join(work, "shards")
    os.makedirs(shards)
    webdataset_shards.build_shards(shards)
    run = _train("0", shards, work, "straight")
    assert run.returncode == 0, run.stderr[-3000:]
    assert _epochs_run(work, "straight") == EPOCHS
    # A finished run deletes its step checkpoints (as BackupAndRestore).
    assert not os.path.exists(os.path.join(work, "straight_checkpoints", "steps"))
    return shards, work


@pytest.mark.backend("tensorflow")
def test_sigkill_mid_epoch_then_restart_equals_an_uninterrupted_run(straight):
    shards, work = straight
    crashed = _train("13", shards, work, "crashed")  # epoch 2, batch 4
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    steps = os.path.join(work, "crashed_checkpoints", "steps")
    assert [os.path.basename(p) for p in checkpoints.complete_checkpoints(steps)] == [
        "step-000000010",
        "step-000000012",
    ]
    with open(os.path.join(steps, "step-000000012", "state.json")) as f:
        state = json.load(f)
    # Batch 3 of epoch 2; 2 on TensorFlow without XLA, where Keras counts a
    # phantom step as a pass runs out (see test_keras_workarounds).
    assert state["step"] == 12 and state["epoch"] == 1 and state["batch"] in (2, 3)
    resumed = _train("0", shards, work, "crashed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    assert f"step 12, epoch 2, batch {state['batch']}" in resumed.stderr
    # The rest of epoch 2, then epoch 3: two history entries ...
    assert _epochs_run(work, "crashed") == 2
    # ... and the weights, optimizer state, temperature and data position it
    # had: the result equals the uninterrupted run's.
    for a, b in zip(_weights(work, "straight"), _weights(work, "crashed")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    restarted = keras.saving.load_model(os.path.join(work, "crashed", "model.keras"))
    assert float(np.asarray(restarted.logit_scale)) != pytest.approx(1 / 0.07)
    last = keras.saving.load_model(os.path.join(work, "crashed_checkpoints", "last.keras"))
    for a, b in zip(last.get_weights(), restarted.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backend("torch")
def test_killed_many_times_even_while_saving_loses_at_most_every_steps(straight):
    shards, work = straight
    # A kill in every phase of a save (a plain kill between saves is the
    # TensorFlow lane's test); step 18 ends epoch 2 on a saved step, so its
    # epoch end rewrites the state ("state").
    rng = random.Random(7)
    kills = [f"{EVERY * rng.randrange(1, 4)}:weights", "18:state"]
    kills += [f"{step}:{phase}" for step, phase in [(20, "rename"), (22, "prune")]]
    log = os.path.join(work, "many.log")
    for kill in kills + ["0"]:
        before = open(log).read().split() if os.path.exists(log) else []
        done = [int(v) for k, v in zip(before[::2], before[1::2]) if k == "step"]
        run = _train(kill, shards, work, "many", log)
        assert run.returncode == (0 if kill == "0" else -9), (kill, run.stderr[-3000:])
        lines = open(log).read().split()[len(before) :]
        assert lines[0] == "begin", (kill, lines)
        begin = int(lines[1])
        # It resumed from a loadable checkpoint no more than EVERY steps
        # back (one ahead when the kill came after a save, before its log).
        last_done = max(done, default=0)
        assert last_done - EVERY <= begin <= last_done + 1, (kill, begin, last_done)
        if kill != "0" and last_done >= EVERY:
            assert checkpoints.complete_checkpoints(os.path.join(work, "many_checkpoints", "steps"))
    for a, b in zip(_weights(work, "straight"), _weights(work, "many")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
