"""The committed demo model (saved_models/shapes_clip) stays loadable and good."""

import json
import os

import numpy as np
import pytest

from keras_clip import cli
from keras_clip.cli.common import load_model_dir
from keras_clip.datasets import shapes
from keras_clip.evaluation import ZeroShotClassifier

MODEL_DIR = os.path.join(os.path.dirname(__file__), "..", "saved_models", "shapes_clip")


@pytest.fixture(scope="module")
def committed():
    return load_model_dir(MODEL_DIR)


def test_zero_shot_on_held_out_shapes_is_well_above_chance(committed):
    model, tokenizer = committed
    held_out = shapes.load(300, image_size=64, seed=10_000)  # the demo's test seed
    classifier = ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    images = model.image_preprocessing.normalize(held_out["images"])
    accuracy = classifier.accuracy(images, held_out["labels"])
    # Chance is 1/30; the demo measured 86.5% top-1 on 1,000 images.
    assert accuracy >= 0.6, accuracy


@pytest.mark.backend("tensorflow")
def test_committed_saved_model_matches_the_keras_file(committed):
    import tensorflow as tf

    model, tokenizer = committed
    served = tf.saved_model.load(os.path.join(MODEL_DIR, "saved_model"))
    prompts = ["a photo of a red circle.", "a small blue square on the left"]
    embeddings = served.signatures["encode_text"](texts=tf.constant(prompts))["embeddings"]
    expected = model.predict({"token_ids": tokenizer(prompts)}, verbose=0)["text_embeddings"]
    np.testing.assert_allclose(embeddings.numpy(), expected, atol=1e-5)


def test_cli_zero_shot_ranks_the_right_label_for_png_files(tmp_path, capsys):
    import tensorflow as tf

    paths = []
    for name in ("red circle", "blue square", "green triangle"):
        color, shape = name.split()
        image = shapes.render(color, shape, "large", "center", 64, np.random.default_rng(1))
        path = str(tmp_path / f"{shape}.png")
        tf.io.write_file(path, tf.io.encode_png(image))
        paths.append(path)
    code = cli.main(
        [
            "zero-shot",
            *paths,
            "--model-dir",
            MODEL_DIR,
            "--json",
            "--classes",
            "red circle,blue square,green triangle",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    top = [r["ranked"][0]["label"] for r in results]
    assert top == ["red circle", "blue square", "green triangle"]


def test_cli_zero_shot_bad_inputs_exit_with_one_line(tmp_path, capsys):
    corrupt = tmp_path / "bad.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnope")
    assert cli.main(["zero-shot", str(corrupt), "--model-dir", MODEL_DIR, "--classes", "a,b"]) == 2
    assert "is not a readable" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "zero-shot",
                str(tmp_path / "missing.png"),
                "--model-dir",
                MODEL_DIR,
                "--classes",
                "a,b",
            ]
        )
        == 2
    )
    assert (
        cli.main(["zero-shot", str(corrupt), "--model-dir", str(tmp_path), "--classes", "a,b"]) == 2
    )
    assert "No model.keras" in capsys.readouterr().err


def test_cli_evaluate_writes_report_and_plots(tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        cli.main(
            ["evaluate", "--model-dir", MODEL_DIR, "--output", str(out), "--num-examples", "60"]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["zero_shot"]["top1"] > 0.3  # chance 1/30
    assert len(report["zero_shot"]["confusion_matrix"]) == 30
    assert 0 <= report["retrieval"]["text_to_image_recall@1"] <= 1
    for name in ("similarity.png", "confusion.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = np.frombuffer(data[16:24], ">u4")
        assert min(width, height) >= 600  # a labelled figure, not a grid of 8-pixel cells
    assert "zero-shot top-1" in capsys.readouterr().out
    assert cli.main(["evaluate", "--output", str(out), "--num-examples", "1"]) == 2


def test_cli_zero_shot_odd_text_and_image_inputs(tmp_path, capsys):
    from PIL import Image

    rgba, gray = tmp_path / "rgba.png", tmp_path / "gray.jpg"
    Image.new("RGBA", (50, 30), (200, 30, 30, 120)).save(rgba)
    Image.new("L", (20, 40), 128).save(gray)
    long_name = "red circle " * 1000  # 10,000 characters: truncated, end token kept
    code = cli.main(
        [
            "zero-shot",
            str(rgba),
            str(gray),
            "--model-dir",
            MODEL_DIR,
            "--classes",
            f"{long_name},blue square",
            "--json",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [len(r["ranked"]) for r in results] == [2, 2]
    assert all(abs(sum(x["probability"] for x in r["ranked"]) - 1) < 1e-3 for r in results)
    # Undecodable bytes in argv (surrogates) become U+FFFD in the labels.
    assert (
        cli.main(
            [
                "zero-shot",
                str(rgba),
                "--model-dir",
                MODEL_DIR,
                "--classes",
                os.fsdecode(b"caf\xe9") + ",b",
                "--json",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {r["label"] for r in results[0]["ranked"]} == {"caf\ufffd", "b"}
