"""Zero-shot and retrieval on class folders and CLIP_benchmark webdataset
sets, through the Python API and `keras-clip evaluate`; shipped prompt
metadata; templates given as callables."""

import json

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.data import load_images
from keras_clip.data.labelled import read_evaluation_set
from keras_clip.evaluation import ZeroShotClassifier
from keras_clip.evaluation import evaluate_retrieval
from keras_clip.evaluation import evaluate_zero_shot
from keras_clip.evaluation import prompts
from keras_clip.evaluation.sets import retrieval_on_set
from keras_clip.models.preprocessing import images_for_model
from tests import evaluation_sets

# Backend-neutral: each test runs on one backend's lane (the suite's time).
ZERO_SHOT_KEYS = ("top1", "top5", "confusion_matrix", "num_images")


@pytest.fixture(scope="module")
def shipped():
    return load_model_dir(SHIPPED_MODEL)


def _same_report(found, expected):
    for key in ZERO_SHOT_KEYS:
        assert found[key] == expected[key], key


@pytest.mark.backend("tensorflow")
def test_zero_shot_on_a_class_folder_equals_the_python_api(shipped, tmp_path, capsys):
    model, tokenizer = shipped
    paths, labels, class_names = evaluation_sets.build_class_folder(str(tmp_path / "set"))
    expected = evaluate_zero_shot(
        model, tokenizer, images_for_model(model, load_images(paths, 64)), labels, class_names
    )
    assert 0.3 < expected["top1"] < 1.0  # 30 classes: the report can tell errors apart
    assert (
        cli.main(
            ["evaluate", "--zero-shot", str(tmp_path / "set"), "--output", str(tmp_path / "out")]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())["zero_shot"]
    _same_report(report, expected)
    assert report["class_names"] == class_names and report["num_templates"] == 6
    assert set(report["per_class"]) == set(class_names)
    assert report["skipped"]["not_an_image"] == 1 and report["skipped"]["unreadable_image"] == 1
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 0
    assert "zero-shot top-1" in capsys.readouterr().out


@pytest.mark.backend("tensorflow")
def test_zero_shot_on_clip_benchmark_shards_equals_the_python_api(shipped, tmp_path):
    model, tokenizer = shipped
    images, labels = evaluation_sets.build_clip_benchmark(str(tmp_path / "wds"))
    names = list(evaluation_sets.CLASSES)
    expected = evaluate_zero_shot(
        model,
        tokenizer,
        images_for_model(model, images),
        labels,
        names,
        templates=list(evaluation_sets.TEMPLATES),
    )
    out = tmp_path / "out"
    assert cli.main(["evaluate", "--zero-shot", str(tmp_path / "wds"), "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())["zero_shot"]
    _same_report(report, expected)
    assert report["num_templates"] == 2  # the set's own templates file
    assert report["skipped"]["not_an_image"] == 1 and report["skipped"]["unreadable_image"] == 1
    # An explicit template set wins over the set's own.
    assert (
        cli.main(
            [
                "evaluate",
                "--zero-shot",
                str(tmp_path / "wds" / "test"),
                "--output",
                str(out),
                "--templates",
                "openai_imagenet_7",
            ]
        )
        == 0
    )
    assert json.loads((out / "report.json").read_text())["zero_shot"]["num_templates"] == 7


@pytest.mark.backend("torch")
def test_retrieval_on_clip_benchmark_shards_equals_the_python_api(shipped, tmp_path):
    model, tokenizer = shipped
    images, labels = evaluation_sets.build_clip_benchmark(str(tmp_path / "ret"), retrieval=True)
    captions, owners = [], []
    for index, label in enumerate(labels):
        name = evaluation_sets.CLASSES[label]
        captions += [f"a photo of a {name}.", f"a {name} on white."]
        owners += [index, index]
    expected = evaluate_retrieval(
        model, images_for_model(model, images), captions, tokenizer, np.array(owners)
    )
    found = retrieval_on_set(
        model, tokenizer, read_evaluation_set(str(tmp_path / "ret"), 64, 8), verbose=0
    )
    assert found["num_images"] == len(images) and found["num_captions"] == len(captions)
    for key, value in expected.items():
        np.testing.assert_allclose(found[key], value, atol=1e-12, err_msg=key)
    assert found["skipped"]["not_an_image"] == 1


@pytest.mark.backend("torch")
def test_bad_evaluation_sets_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No evaluation set folder"):
        read_evaluation_set(str(tmp_path / "nowhere"), 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders with images"):
        read_evaluation_set(str(tmp_path / "empty"), 64)
    evaluation_sets.build_class_folder(str(tmp_path / "set"), count=10)
    (tmp_path / "set" / "classnames.txt").write_text("only\ntwo\n")
    with pytest.raises(ValueError, match=r"2 names for \d+ class folders"):
        read_evaluation_set(str(tmp_path / "set"), 64)
    evaluation_sets.build_clip_benchmark(str(tmp_path / "wds"), count=10)
    (tmp_path / "wds" / "test" / "nshards.txt").write_text("4\n")  # it wrote 3
    with pytest.raises(FileNotFoundError, match="nshards.txt lists 4 shards"):
        read_evaluation_set(str(tmp_path / "wds"), 64)


@pytest.mark.backend("torch")
def test_shipped_imagenet_metadata_and_template_forms(shipped):
    names = prompts.class_names("imagenet")
    assert len(names) == 1000 and names[0] == "tench" and names[-1] == "toilet paper"
    assert len(prompts.templates("openai_imagenet")) == 80
    seven = prompts.templates("openai_imagenet_7")
    assert len(seven) == 7 and set(seven) < set(prompts.templates("openai_imagenet"))
    model, tokenizer = shipped
    classes = ["red circle", "blue square"]
    as_strings = ZeroShotClassifier(model, tokenizer, classes, ["a photo of a {}.", "a {c}."])
    as_callables = ZeroShotClassifier(
        model, tokenizer, classes, [lambda c: f"a photo of a {c}.", lambda c: f"a {c}."]
    )
    np.testing.assert_array_equal(as_strings.class_embeddings, as_callables.class_embeddings)
    with pytest.raises(ValueError, match="exactly one"):
        ZeroShotClassifier(model, tokenizer, classes, ["no placeholder"])
    with pytest.raises(ValueError, match="must return a str"):
        ZeroShotClassifier(model, tokenizer, classes, [lambda c: 3])
    with pytest.raises(ValueError, match="Unknown templates 'imagenet80'"):
        ZeroShotClassifier(model, tokenizer, classes, "imagenet80")


@pytest.mark.backend("torch")
def test_metadata_equals_open_clips():
    from tests.helpers import import_open_clip

    metadata = import_open_clip().zero_shot_metadata
    assert prompts.class_names("imagenet") == list(metadata.IMAGENET_CLASSNAMES)
    for name, expected in (
        ("openai_imagenet", metadata.OPENAI_IMAGENET_TEMPLATES),
        ("openai_imagenet_7", metadata.SIMPLE_IMAGENET_TEMPLATES),
    ):
        makers = prompts.prompt_makers(name)
        assert [m("tabby cat") for m in makers] == [t("tabby cat") for t in expected]


@pytest.mark.backend("torch")
def test_images_fit_the_square_as_open_clip_resize_modes_say(tmp_path):
    """shortest: short side, centre crop (the default, OpenAI's); squash:
    the whole image, aspect lost (SigLIP); longest: the whole image, padded
    with black. The model's own settings go from checkpoint to loading."""
    import tensorflow as tf

    from keras_clip.data.images import center_crop
    from keras_clip.data.images import fit_to_square

    image = np.zeros((40, 80, 3), "uint8")
    image[:, :40] = 200  # left half bright
    shortest = fit_to_square(tf.constant(image), 32).numpy()
    np.testing.assert_array_equal(shortest, center_crop(tf.constant(image), 32).numpy())
    squash_settings = keras_clip.ImagePreprocessing(
        32, resize_mode="squash", interpolation="bilinear"
    )
    squash = fit_to_square(tf.constant(image), squash_settings).numpy()
    assert squash[:, :14].min() > 150 and squash[:, 18:].max() < 50  # both halves kept
    longest_settings = keras_clip.ImagePreprocessing(32, resize_mode="longest")
    longest = fit_to_square(tf.constant(image), longest_settings).numpy()
    assert longest[:7].max() == 0 and longest[-7:].max() == 0  # padded rows
    assert longest[10:22, :14].min() > 150
    with pytest.raises(ValueError, match="Unknown resize_mode 'crop'"):
        keras_clip.ImagePreprocessing(32, resize_mode="crop")
    model = keras_clip.CLIP.from_architecture("tiny-vit", image_preprocessing=squash_settings)
    model.save_pretrained(str(tmp_path / "oc"), format="open_clip")
    again = keras_clip.CLIP.from_pretrained(str(tmp_path / "oc"))
    assert again.image_preprocessing == squash_settings
    path = str(tmp_path / "m.keras")
    again.save(path)
    assert keras.saving.load_model(path).image_preprocessing == squash_settings
