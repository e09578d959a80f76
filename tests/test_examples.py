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
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _two_devices(name, batch_flag):
    """The example's smoke run on 2 simulated devices: a global batch of
    64 from 32 per device. (That global negatives make it one device's
    computation is tests/test_distributed.py's check, to 1e-5.)"""
    two = run_example(name, "--smoke", "--simulated-devices", "2", batch_flag, "32")
    assert two["global_batch_size"] == 64
    assert 0 < two["final_loss"] < 10 and 0 <= two["zero_shot_top1"] <= 1
    return two


@pytest.mark.backend("tensorflow")
def test_distributed_tf_example_trains_on_two_devices():
    assert _two_devices("distributed_tf.py", "--per-replica-batch")["replicas"] == 2


@pytest.mark.backend("jax")
def test_distributed_jax_example_trains_on_two_devices():
    assert _two_devices("distributed_jax.py", "--per-device-batch")["devices"] == 2


def run_in_process(name, *args):
    """Runs examples/NAME's main(args) here (no new interpreter to start)."""
    import importlib.util

    path = os.path.join(ROOT, "examples", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


def test_train_shapes_example_trains_clip_lite_and_saves_what_it_scored(tmp_path):
    report = run_in_process(
        "train_shapes.py",
        "--smoke",
        "--objective",
        "clip-lite",
        "--batch-size",
        "16",
        "--output",
        str(tmp_path / "model"),
    )
    assert report["objective"] == "clip-lite"
    # The saved model and tokenizer score what the report says, on the
    # recipe's own held-out set (seed + 10,000).
    import keras

    import keras_clip
    from keras_clip.datasets import shapes

    model = keras.saving.load_model(str(tmp_path / "model" / "model.keras"))
    assert isinstance(model, keras_clip.CLIPLite)
    tokenizer = keras_clip.Tokenizer.load(str(tmp_path / "model" / "tokenizer"))
    test = shapes.load(report["num_test_images"], model.image_size, seed=10_000)
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    accuracy = classifier.accuracy(test["images"], test["labels"])
    assert accuracy == pytest.approx(report["zero_shot_top1"], abs=1e-4)


def test_zero_shot_example_beats_chance_tenfold():
    report = run_in_process("zero_shot.py", "--generate", "60")
    assert report["top1"] >= 10 * report["chance_top1"]  # the committed model: ~0.75


def test_search_folder_example_finds_the_described_shapes(tmp_path):
    report = run_in_process(
        "search_folder.py",
        str(tmp_path / "shapes"),
        "--demo-folder",
        "60",
        "--query",
        "a photo of a red circle.",
        "--query",
        "a blue cross",
        "--top-k",
        "3",
    )
    assert report["images"] == 60
    red_circle, blue_cross = (result["ranked"] for result in report["results"])
    assert "red_circle" in red_circle[0][0] and "blue_cross" in blue_cross[0][0]
    assert red_circle[0][1] > red_circle[1][1] >= red_circle[2][1]


def test_fine_tune_example_runs():
    report = run_in_process("fine_tune.py", "--smoke")
    # The committed model's contrastive loss on new pairs, batch 64: far
    # below chance (log 64 = 4.16); it measured 0.11.
    assert report["final_loss"] < 1.0
    assert report["zero_shot_top1_before"] >= 0.5  # the committed model
    assert abs(report["zero_shot_top1_after"] - report["zero_shot_top1_before"]) <= 0.2


def test_export_and_serve_example(tmp_path):
    report = run_in_process("export_and_serve.py", "--output", str(tmp_path / "saved"))
    assert "serving_default" in report["signatures"]
    assert report["best_text_per_image"] == report["texts"]  # one shape of each


@pytest.mark.backend("torch")  # a long smoke run: one lane
def test_batch_size_study_smoke_adds_to_saved_runs(tmp_path):
    first = run_in_process(
        "batch_size_study.py", "--smoke", "--output", str(tmp_path), "--objectives", "infonce"
    )
    assert first["runs"] == 1  # 1 objective x 1 batch size x 1 seed
    saved = json.loads((tmp_path / "results.json").read_text())["runs"]
    # The second run keeps that one (same settings) and trains only the variant.
    report = run_in_process(
        "batch_size_study.py",
        "--smoke",
        "--output",
        str(tmp_path),
        "--objectives",
        "infonce,clip-lite-symmetric",
    )
    assert report["runs"] == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["runs"][:1] == saved
    assert results["settings"]["objectives"] == "clip-lite-symmetric,infonce"
    assert results["runs"][1]["objective"] == "clip-lite-symmetric"
    assert all(len(run["mi_over_training"]) == 2 for run in results["runs"])
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n| CLIP (InfoNCE) | 8 |") == 1
    assert table.count("\n| CLIP-Lite (JSD, symmetric) | 8 |") == 1
    with pytest.raises(SystemExit, match="other learning_rate"):
        run_in_process(
            "batch_size_study.py", "--smoke", "--output", str(tmp_path), "--learning-rate", "0.01"
        )


@pytest.mark.backend("jax")  # a long smoke run: one lane
def test_compositional_zero_shot_smoke(tmp_path):
    report = run_in_process("compositional_zero_shot.py", "--smoke", "--output", str(tmp_path))
    assert len(report["runs"]) == 2
    for run in report["runs"]:
        assert 0 <= run["held_out_top1_of_30"] <= 1 and 0 <= run["held_out_top1_of_6"] <= 1
    assert (tmp_path / "compositional.json").exists()
