"""The keras-clip command line."""

import json
import os
import subprocess
import sys

import pytest

from keras_clip import cli

pytestmark = pytest.mark.xla  # the commands as users run them (XLA where compile() picks it)


@pytest.mark.backend("tensorflow")
def test_the_command_hides_tensorflow_native_logging_unless_asked():
    def run(level):
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        if level is not None:
            env["TF_CPP_MIN_LOG_LEVEL"] = level
        command = [sys.executable, "-m", "keras_clip_command", "demo", "--help"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0 and "--train-size" in result.stdout
        return result.stderr.strip()

    assert run(None) == ""  # the console script's own path, quiet
    assert run("0") != ""  # TensorFlow's native lines come back when asked


def test_bad_arguments_exit_non_zero_with_one_line(capsys):
    assert cli.main(["demo", "--epochs", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "keras-clip demo: error: --epochs must be positive."
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--objective", "hinge"])
    assert exit_info.value.code == 2


# TensorFlow only, to keep the suite short: the command is backend-neutral
# Keras (it also passed on JAX and PyTorch), and the SIGKILL test runs it too.
@pytest.mark.backend("tensorflow")
def test_train_from_a_folder_with_checkpoints_tensorboard_and_report(capsys, tmp_path):
    from tests import image_folders

    folder = tmp_path / "photos"
    expected = image_folders.build_folder(str(folder), "jsonl")
    args = [
        "train",
        str(folder),
        "--architecture",
        "tiny-vit",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--vocabulary-size",
        "100",
        "--context-length",
        "16",
        "--validation",
        str(folder / "captions.jsonl"),
        "--verbose",
        "0",
        "--output",
        str(tmp_path / "out"),
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--tensorboard",
        str(tmp_path / "tb"),
        "--no-xla",
    ]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "CLIP" and summary["epochs"] == 2
    report = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert len(report["history"]["loss"]) == 2 and "val_loss" in report["history"]
    assert report["skipped_per_epoch"] == {
        "train": [expected["counts"]] * 2,
        "validation": [expected["counts"]] * 2,
    }
    for path in (
        "out/model.keras",
        "out/tokenizer/tokenizer.json",
        "out/saved_model/saved_model.pb",
        "ckpt/last.keras",
        "ckpt/best.keras",
    ):
        assert (tmp_path / path).exists(), path
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    # The trained directory serves the other commands.
    assert (
        cli.main(
            [
                "zero-shot",
                str(folder / "good0.png"),
                "--classes",
                "picture,view",
                "--model-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "evaluate",
                "--data",
                str(folder),
                "--model-dir",
                str(tmp_path / "out"),
                "--output",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    evaluation = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert evaluation["skipped"] == expected["counts"]
    retrieval = evaluation["retrieval"]
    num_images = len({name for name, _ in expected["pairs"]})
    assert 1 / num_images <= retrieval["image_to_text_recall@10"] <= 1.0
    assert 1 <= retrieval["text_to_image_mean_rank"] <= num_images
    assert (tmp_path / "eval" / "similarity.png").exists()


def test_train_bad_inputs_exit_non_zero_with_one_line(capsys, tmp_path):
    assert cli.main(["train", str(tmp_path / "nothing"), "--output", str(tmp_path)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("keras-clip train: error: No such file or folder")
    )
    (tmp_path / "captions.csv").write_text("name,text\nx.png,a cat\n")
    assert cli.main(["train", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "no image column" in capsys.readouterr().err
    assert cli.main(["train", str(tmp_path), "--output", "o", "--epochs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "keras-clip train: error: --epochs must be positive."
