"""The keras-clip command line."""

import json
import subprocess
import sys

import pytest

from keras_clip import cli


def test_demo_runs_small_and_reports_json(capsys, tmp_path):
    code = cli.main(["demo", "--architecture", "tiny-vit", "--train-size", "64",
                     "--test-size", "30", "--epochs", "1", "--batch-size", "16",
                     "--verbose", "0", "--output", str(tmp_path / "out")])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= report["zero_shot_top1"] <= report["zero_shot_top5"] <= 1.0
    assert (tmp_path / "out" / "model.keras").exists()
    assert (tmp_path / "out" / "tokenizer" / "vocabulary.txt").exists()


def test_bad_arguments_exit_non_zero_with_one_line(capsys):
    assert cli.main(["demo", "--epochs", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "keras-clip demo: error: --epochs must be positive."
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--objective", "hinge"])
    assert exit_info.value.code == 2


@pytest.mark.backend("tensorflow")
def test_help_of_the_console_script():
    result = subprocess.run([sys.executable, "-m", "keras_clip.cli", "demo", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--train-size" in result.stdout
