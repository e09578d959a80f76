"""`--pretrained`: the inference commands take any checkpoint
`CLIP.from_pretrained` reads, with its tokenizer, and give what the same
model gives in Python."""

import json

import numpy as np
import pytest

import keras_clip
from keras_clip import cli
from tests.helpers import to_numpy

# The commands' wiring: once, on TensorFlow (export needs it).
pytestmark = pytest.mark.backend("tensorflow")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random Hugging Face CLIPModel directory with its tokenizer files."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tests.test_pretrained import _clip_config
    from tests.test_pretrained_tokenizer import _huggingface_directory

    folder = _huggingface_directory(tmp_path_factory.mktemp("hf"))
    vocabulary = keras_clip.Tokenizer.from_pretrained(str(folder)).vocabulary_size
    torch.manual_seed(0)
    config = _clip_config(
        width=32, intermediate=64, heads=2, layers=1, vocabulary=vocabulary, context=77,
        end=vocabulary - 1,
    )  # fmt: skip
    transformers.CLIPModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for index, shape in enumerate([(40, 56, 3), (32, 32, 3), (60, 30, 3)]):
        path = str(folder / f"{index}.png")
        Image.fromarray(rng.integers(0, 256, shape).astype("uint8")).save(path)
        paths.append(path)
    return paths


def test_zero_shot_with_a_checkpoint_equals_python(checkpoint, images, capsys):
    classes = ["cat", "dog", "photo"]
    code = cli.main(
        ["zero-shot", *images, "--classes", ",".join(classes), "--pretrained", checkpoint]
        + ["--json", "--top-k", "3"]
    )
    assert code == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = keras_clip.CLIP.from_pretrained(checkpoint)
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoint)
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, classes)
    expected = classifier.predict(keras_clip.data.load_images(images, model))
    for row, result in zip(expected, found):
        probabilities = {r["label"]: r["probability"] for r in result["ranked"]}
        for name, value in zip(classes, row):
            assert probabilities[name] == pytest.approx(float(value), abs=1e-4)


def test_export_with_a_checkpoint_serves_its_text_embeddings(checkpoint, tmp_path):
    import tensorflow as tf

    assert cli.main(["export", "--pretrained", checkpoint, "--output", str(tmp_path)]) == 0
    served = tf.saved_model.load(str(tmp_path))
    texts = ["a photo of a cat.", "dog"]
    model = keras_clip.CLIP.from_pretrained(checkpoint)
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoint)
    expected = to_numpy(model.encode_text(tokenizer(texts)))
    found = served.signatures["encode_text"](texts=tf.constant(texts))["embeddings"].numpy()
    np.testing.assert_allclose(found, expected, atol=1e-5)


def test_model_options_are_checked(checkpoint, capsys):
    args = ["zero-shot", "x.png", "--classes", "a,b"]
    assert cli.main([*args, "--pretrained", checkpoint, "--model-dir", checkpoint]) == 2
    assert "Pass --model-dir or --pretrained, not both" in capsys.readouterr().err
    assert cli.main([*args, "--pretrained-tokenizer", "bpe.txt.gz"]) == 2
    assert "need --pretrained" in capsys.readouterr().err
