"""The model code imports no TensorFlow (multi-backend for real)."""

import os
import subprocess
import sys

import pytest


# Each check runs a process of its own, so once is enough: in its backend's lane.
@pytest.mark.parametrize(
    "backend", [pytest.param(name, marks=pytest.mark.backend(name)) for name in ("jax", "torch")]
)
def test_core_imports_no_tensorflow(backend):
    code = (
        "import sys, numpy as np, keras_clip\n"
        "m = keras_clip.CLIP.from_architecture('tiny-vit')\n"
        "m({'images': np.zeros((2, 32, 32, 3), 'float32'),"
        " 'token_ids': np.ones((2, 16), 'int32')})\n"
        "from keras_clip.datasets import shapes; from keras_clip import evaluation\n"
        "from keras_clip.pretrained import from_pretrained\n"
        "from keras_clip.training import callbacks, checkpoints, recipes\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
