"""What a user of the command line sees: their results, and no warning they
cannot act on (Keras' UserWarnings, TensorFlow's retracing warning, native
library lines), from any working directory, on every backend."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = (
    "Warning",  # UserWarning, DeprecationWarning, ... with their source lines
    "WARNING",  # absl / TensorFlow's Python logging
    "retracing",
    "I0000",  # TensorFlow's native start-up lines
    "oneDNN",
    "cuda",
    "JPEG",  # libjpeg on a corrupt file
)


def run_command(arguments, cwd, **environment):
    """`keras-clip ARGUMENTS` as the console script runs it, in `cwd`."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = keras.backend.backend()
    env.update(environment)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "keras_clip_command", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def assert_quiet(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    noise = [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]
    assert noise == [], "\n".join(noise)
    assert "\x1b[" not in result.stdout + result.stderr  # no colour codes in a log


def test_demo_prints_results_and_no_warnings_and_writes_a_new_folder(tmp_path):
    """One smoke run of the main job (learning is
    tests/test_learning_quality.py's job): what it prints, what it writes."""
    result = run_command(
        ["demo", "--architecture", "tiny-vit", "--train-size", "64", "--test-size", "30",
         "--epochs", "1", "--batch-size", "16"],
        cwd=tmp_path,  # the default output is relative: outputs/demo-*/
    )  # fmt: skip
    assert_quiet(result)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("keras-clip demo: backend ") and "computing on" in lines[0]
    assert any(line.startswith("Zero-shot accuracy on 30 held-out shapes") for line in lines)
    reports = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(reports) == 1
    report = reports[0]
    assert (report["architecture"], report["epochs"], report["num_test_images"]) == (
        "tiny-vit",
        1,
        30,
    )
    assert report["chance_top1"] == round(1 / 30, 4)
    (written,) = (tmp_path / "outputs").iterdir()
    assert written.name.startswith("demo-")
    assert report["output"] == str(pathlib.Path("outputs", written.name))
    assert lines[-1].startswith(f"Saved the model in {report['output']}/")
    assert (written / "model.keras").exists()
    assert (written / "tokenizer" / "vocabulary.txt").exists()
    assert json.loads((written / "demo_report.json").read_text()) == report
    assert not (tmp_path / "saved_models").exists()


@pytest.mark.backend("tensorflow", "jax")
def test_train_on_a_folder_with_corrupt_images_says_so_once_in_our_words(tmp_path):
    from tests import image_folders

    folder = tmp_path / "photos"
    expected = image_folders.build_folder(str(folder))
    result = run_command(
        ["train", str(folder), "--architecture", "tiny-vit", "--epochs", "2",
         "--batch-size", "8", "--output", str(tmp_path / "out")],
        cwd=tmp_path,
    )  # fmt: skip
    assert_quiet(result)
    unreadable = expected["counts"]["unreadable_image"]
    assert unreadable > 0
    assert f"{unreadable} unreadable_image" in result.stdout + result.stderr


@pytest.mark.backend("tensorflow")
def test_zero_shot_works_from_any_folder_with_the_shipped_model(tmp_path):
    from PIL import Image

    from keras_clip.datasets import shapes

    image = shapes.render("red", "circle", "large", "center", 64)
    Image.fromarray(image).save(tmp_path / "shape.png")
    result = run_command(
        ["zero-shot", "shape.png", "--classes", "red circle,blue square,green triangle"],
        cwd=tmp_path,
    )
    assert_quiet(result)
    assert result.stdout.startswith("shape.png: red circle (")


@pytest.mark.backend("tensorflow")
def test_a_backend_that_is_not_installed_gives_one_line_naming_the_extra(tmp_path):
    fake = tmp_path / "site" / "jax"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n"
    )
    result = run_command(
        ["demo", "--help"], cwd=tmp_path, KERAS_BACKEND="jax", PYTHONPATH=str(tmp_path / "site")
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "keras-clip: KERAS_BACKEND=jax needs jax, which is not installed: "
        "pip install 'keras-clip[jax]' (or unset KERAS_BACKEND for TensorFlow)."
    ]


def test_skipped_files_are_said_once_in_words():
    from keras_clip.cli.evaluate import skipped_files_note

    assert skipped_files_note({"unreadable_image": 0, "empty_caption": 0}) == ""
    assert skipped_files_note({"unreadable_image": 2, "not_an_image": 1, "missing_file": 0}) == (
        "; skipped by reason: 2 unreadable image, 1 not an image (see report.json)"
    )
