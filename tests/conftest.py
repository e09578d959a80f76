"""Test configuration: one backend per pytest run (KERAS_BACKEND).

`@pytest.mark.backend("tensorflow", ...)` marks a test that only makes sense
on the named backends; it is skipped on the others.

On TensorFlow, `CLIP.compile()` in this process keeps XLA off (Keras' CPU
default) unless the test is marked `@pytest.mark.xla`: XLA compiles each
tiny model's steps for seconds (the TensorFlow lane took 1245 s instead of
985), and `tests/test_compilation.py` shows its results equal. The
end-to-end tests run what users get: the learning-quality test, the README
snippets and the in-process CLI tests are marked `xla`, and runs in child
processes (the CLI, the examples) keep the XLA default.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import allow_torchvision_import  # noqa: E402

allow_torchvision_import()  # transformers imports torchvision when installed


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("backend")
    if marker and keras.backend.backend() not in marker.args:
        pytest.skip(f"only on backend(s) {marker.args}")


@pytest.fixture(autouse=True)
def _xla_only_where_marked(request, monkeypatch):
    if keras.backend.backend() == "tensorflow" and not request.node.get_closest_marker("xla"):
        from keras_clip.models import compilation

        monkeypatch.setattr(compilation, "tensorflow_xla_is_faster", lambda model: False)


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts with the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
