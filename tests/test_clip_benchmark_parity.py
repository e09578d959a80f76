"""`keras-clip evaluate --pretrained` on a CLIP_benchmark set gives
CLIP_benchmark's own numbers for the same open_clip checkpoint (random,
perturbed, varied in its predictions): zero-shot top-1, top-5 and mean
per-class recall, retrieval recall@1/5/10 both ways. CLIP_benchmark 1.6.2
runs as `clip_benchmark eval` does (tests/clip_benchmark_runner.py) on
sets its own converter wrote. The images are at the model's resolution
(32), PNG and JPEG: open_clip resizes with PIL, keras-clip in TensorFlow,
and the two resizes differ in the last bits."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from keras_clip import cli
from tests import peer_tools
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model

# CLIP_benchmark and open_clip run in their own process; the command once.
pytestmark = pytest.mark.backend("tensorflow")
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CLASSES = ["cat", "dog", "red car", "tree", "house", "boat", "apple", "horse", "bird", "chair"]
TEMPLATES = ["a photo of a {c}.", "a drawing of a {c}."]
RECALLS = (1, 5, 10)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An open_clip directory as open_clip's `local-dir:` reads it."""
    open_clip = import_open_clip()
    folder = tmp_path_factory.mktemp("open_clip")
    random_open_clip_model(CONFIG, folder / "open_clip_model.safetensors", scale=0.3)
    preprocess = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}  # fmt: skip
    config = {"model_cfg": CONFIG, "preprocess_cfg": preprocess}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    shutil.copy(bpe, folder)
    return str(folder)


def _write_set(root, count, retrieval):
    """Noise images (PNG and JPEG) converted by CLIP_benchmark; returns root."""
    rng = np.random.default_rng(1 + retrieval)
    images = root / "images"
    images.mkdir(parents=True)
    items = []
    for index in range(count):
        path = str(images / (f"{index}.jpg" if index % 2 else f"{index}.png"))
        Image.fromarray(rng.integers(0, 256, (32, 32, 3)).astype("uint8")).save(path)
        name = CLASSES[index % len(CLASSES)]
        label = [f"a picture of a {name}, number {index}", f"{name} {index}"]
        items.append((path, label if retrieval else index % len(CLASSES)))
    spec = {"output": str(root / "set"), "items": items, "retrieval": retrieval}
    spec.update(classes=CLASSES, templates=TEMPLATES, max_count=16)
    (root / "spec.json").write_text(json.dumps(spec))
    peer_tools.run_clip_benchmark("convert", root / "spec.json")
    return str(root / "set")


def _clip_benchmarks_metrics(checkpoint, dataset_root, task, output):
    peer_tools.run_clip_benchmark(
        *("eval", "--model", f"local-dir:{checkpoint}", "--pretrained", "none"),
        *("--model_type", "open_clip", "--dataset", "wds/parity", "--dataset_root", dataset_root),
        *("--task", task, "--recall_k", *RECALLS, "--no_amp", "--batch_size", 16),
        *("--num_workers", 0, "--output", output),
    )
    with open(output) as f:
        return json.load(f)["metrics"]


def _ours(checkpoint, option, dataset_root, output):
    arguments = ["evaluate", "--pretrained", checkpoint, option, dataset_root, "--output", output]
    assert cli.main([*arguments, "--batch-size", "16"]) == 0
    with open(os.path.join(output, "report.json")) as f:
        return json.load(f)


def test_zero_shot_equals_clip_benchmark(checkpoint, tmp_path):
    dataset_root = _write_set(tmp_path, 40, retrieval=False)
    theirs = _clip_benchmarks_metrics(
        checkpoint, dataset_root, "zeroshot_classification", tmp_path / "cb.json"
    )
    ours = _ours(checkpoint, "--zero-shot", dataset_root, str(tmp_path / "ours"))["zero_shot"]
    assert ours["num_images"] == 40 and ours["num_templates"] == len(TEMPLATES)
    # A model that answers one class for everything would prove little.
    assert np.count_nonzero(np.sum(ours["confusion_matrix"], axis=0)) >= 4
    assert ours["top1"] == pytest.approx(theirs["acc1"], abs=1e-9)
    assert ours["top5"] == pytest.approx(theirs["acc5"], abs=1e-9)
    assert ours["mean_per_class_accuracy"] == pytest.approx(
        theirs["mean_per_class_recall"], abs=1e-9
    )


def test_retrieval_equals_clip_benchmark(checkpoint, tmp_path):
    dataset_root = _write_set(tmp_path, 30, retrieval=True)
    theirs = _clip_benchmarks_metrics(
        checkpoint, dataset_root, "zeroshot_retrieval", tmp_path / "cb.json"
    )
    ours = _ours(checkpoint, "--retrieval", dataset_root, str(tmp_path / "ours"))["retrieval"]
    assert ours["num_images"] == 30 and ours["num_captions"] == 60
    for k in RECALLS:
        # CLIP_benchmark's image retrieval ranks the images for each text.
        assert ours[f"text_to_image_recall@{k}"] == pytest.approx(
            theirs[f"image_retrieval_recall@{k}"], abs=1e-6
        )
        assert ours[f"image_to_text_recall@{k}"] == pytest.approx(
            theirs[f"text_retrieval_recall@{k}"], abs=1e-6
        )
    assert 0 < ours["text_to_image_recall@5"] < 1
