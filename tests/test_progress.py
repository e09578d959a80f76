"""Progress off a terminal is plain lines, not a redrawn bar."""

import pytest

from keras_clip.utils import ProgressBar
from keras_clip.utils import require

pytestmark = pytest.mark.backend("tensorflow")  # plain Python


def test_off_a_terminal_progress_is_a_line_per_interval_and_one_at_the_end(capsys):
    progress = ProgressBar(unit_name="image", interval=0.0)
    progress.add(3)
    progress.add(2)
    progress.close()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\b" not in out and "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("3 images in ") and lines[-1].startswith("5 images in ")
    assert lines[-1].endswith("images/s)")


def test_progress_with_a_target_and_silent_progress(capsys):
    progress = ProgressBar(10, unit_name="pair", interval=3600)
    progress.update(4)  # within the interval: nothing yet
    progress.close()
    assert capsys.readouterr().out.startswith("4/10 pairs in ")
    silent = ProgressBar(verbose=0)
    silent.add(5)
    silent.close()
    assert capsys.readouterr().out == ""


def test_a_missing_optional_package_is_named_with_its_extra():
    require(("json",), "Anything")
    with pytest.raises(
        ImportError, match=r"ONNX export needs no_such_pkg: pip install 'keras-clip\[onnx\]'"
    ):
        require(("json", "no_such_pkg"), "ONNX export", extra="onnx")
