"""A training process killed with SIGKILL resumes where it was."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_clip  # noqa: F401 (registers the classes model.keras names)
from tests import image_folders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(kill_at, folder, work, name):
    args = [
        sys.executable,
        "-m",
        "tests.crash_check",
        str(kill_at),
        "train",
        folder,
        "--architecture",
        "tiny-vit",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--vocabulary-size",
        "100",
        "--context-length",
        "16",
        "--seed",
        "3",
        "--horizontal-flip",
        "--no-xla",
        "--verbose",
        "0",
        "--output",
        os.path.join(work, name),
        "--checkpoint-dir",
        os.path.join(work, name + "_checkpoints"),
    ]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)


# TensorFlow only, to keep the suite short: the resume logic (Keras'
# BackupAndRestore, the data epoch) is backend-neutral and also passed on JAX.
@pytest.mark.backend("tensorflow")
def test_sigkill_mid_epoch_then_restart_equals_an_uninterrupted_run(tmp_path):
    folder = str(tmp_path / "photos")
    image_folders.build_folder(folder)  # 48 usable images: 6 steps per epoch
    work = str(tmp_path)
    uninterrupted = _train(0, folder, work, "straight")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    crashed = _train(9, folder, work, "crashed")  # in epoch 2 (steps 7-12)
    assert crashed.returncode == -9, crashed.stderr[-3000:]
    backup = os.path.join(work, "crashed_checkpoints", "backup")
    assert os.path.isdir(backup) and not os.path.exists(os.path.join(work, "crashed"))
    resumed = _train(0, folder, work, "crashed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The restart resumed at epoch 2 (it ran 2 epochs, not 3) ...
    epochs_run = [
        len(json.load(open(os.path.join(work, name, "train_report.json")))["history"]["loss"])
        for name in ("straight", "crashed")
    ]
    assert epochs_run == [3, 2]
    # ... with the weights, optimizer state, temperature and data position
    # it had: the result equals the uninterrupted run's.
    straight = keras.saving.load_model(os.path.join(work, "straight", "model.keras"))
    restarted = keras.saving.load_model(os.path.join(work, "crashed", "model.keras"))
    for a, b in zip(straight.get_weights(), restarted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    logit_scale = float(np.asarray(straight.logit_scale))
    assert logit_scale != pytest.approx(1 / 0.07)  # the temperature trained and matched
    checkpoints = os.path.join(work, "crashed_checkpoints")
    # last.keras is the final epoch's model; best.keras needs --validation.
    last = keras.saving.load_model(os.path.join(checkpoints, "last.keras"))
    for a, b in zip(last.get_weights(), restarted.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not os.path.exists(os.path.join(checkpoints, "best.keras"))
