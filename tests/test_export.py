"""SavedModel export: served without keras_clip, equal to the Keras model."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.datasets import shapes
from keras_clip.export import export_saved_model

HERE = os.path.dirname(__file__)
PREPROCESSING = keras_clip.ImagePreprocessing(mean=(0.5, 0.45, 0.4), std=(0.25, 0.3, 0.2))
SIGNATURES = (
    "image_preprocessing",
    "encode_text",
    "encode_image",
    "encode_image_bytes",
    "serving_default",
    "encode_token_ids",
    "encode_normalized_images",
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model trained one step on the current backend, exported and served.

    Its image mean and std are not OpenAI's: the export must take the
    model's own (as a checkpoint loaded with from_pretrained carries them)."""
    workdir = tmp_path_factory.mktemp("export")
    data = shapes.load(8, image_size=32, seed=5)
    tokenizer = keras_clip.Tokenizer.from_corpus(data["captions"], 60, 16)
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit",
        vocabulary_size=tokenizer.vocabulary_size,
        context_length=16,
        image_preprocessing=PREPROCESSING,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = PREPROCESSING.normalize(data["images"])
    token_ids = tokenizer(data["captions"])
    model.fit({"images": images, "token_ids": token_ids}, batch_size=8, verbose=0)
    path = str(workdir / "saved_model")
    export_saved_model(model, tokenizer, path)
    # Served images go through PNG bytes; 40x48 pixels exercise resize + crop.
    big = np.repeat(np.repeat(data["images"], 2, axis=1), 2, axis=2)[:, :, 8:56]
    png = [tf.io.encode_png(image).numpy() for image in big]
    inputs = str(workdir / "inputs.npz")
    np.savez(
        inputs,
        texts=np.array(data["captions"], object),
        images=data["images"],
        token_ids=token_ids,
        image_bytes=np.array(png, object),
    )
    outputs = str(workdir / "outputs.npz")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "serve_check.py"), path, inputs, outputs],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = dict(np.load(outputs, allow_pickle=True))
    report = json.loads(str(served.pop("report")))
    messages = str(served.pop("messages"))
    keras_images = model.predict({"images": images}, verbose=0)["image_embeddings"]
    keras_bytes = model.predict(
        {
            "images": PREPROCESSING.normalize(
                # 64x48: the short side (48) goes to 32, the long side to
                # int(64 * 32 / 48) = 42 as in torchvision; rows 5:37 kept.
                np.stack(
                    [
                        tf.image.resize(b, (42, 32), "bicubic", antialias=True)
                        .numpy()[5:37]
                        .round()
                        .clip(0, 255)
                        .astype("uint8")
                        for b in big
                    ]
                )
            )
        },
        verbose=0,
    )["image_embeddings"]
    keras_text = model.predict({"token_ids": token_ids}, verbose=0)["text_embeddings"]
    scale = float(keras.ops.convert_to_numpy(model.logit_scale))
    return dict(
        path=path,
        served=served,
        report=report,
        messages=messages,
        keras_images=keras_images,
        keras_text=keras_text,
        keras_bytes=keras_bytes,
        scale=scale,
        preprocessing=model.image_preprocessing,
    )


def test_the_model_preprocessing_travels_with_the_saved_model(exported):
    """Read by a client without keras-clip (serve_check.py), and by
    `read_image_preprocessing`: the model's own object, size included."""
    served = json.loads(str(exported["served"]["image_preprocessing"]))
    assert served == exported["preprocessing"].get_config()
    assert served["image_size"] == 32 and served["mean"] == [0.5, 0.45, 0.4]
    found = keras_clip.export.read_image_preprocessing(exported["path"])
    assert found == exported["preprocessing"]


def test_every_signature_matches_keras(exported):
    served = exported["served"]
    np.testing.assert_allclose(served["encode_text"], exported["keras_text"], atol=1e-5)
    np.testing.assert_allclose(served["encode_token_ids"], exported["keras_text"], atol=1e-5)
    np.testing.assert_allclose(served["encode_image"], exported["keras_images"], atol=1e-5)
    np.testing.assert_allclose(served["encode_image_bytes"], exported["keras_bytes"], atol=1e-5)
    np.testing.assert_allclose(
        served["serving_default_text_embeddings"], exported["keras_text"], atol=1e-5
    )
    expected_logits = exported["scale"] * served["encode_image_bytes"] @ exported["keras_text"].T
    np.testing.assert_allclose(served["serving_default_logits"], expected_logits, atol=1e-4)


def test_bad_inputs_give_errors_or_documented_results(exported):
    report = exported["report"]
    assert report["empty_string"] == "ok"  # encodes [START, END]
    assert report["long_string"] == "ok"  # truncated, end token kept
    assert report["grayscale_png"] == "ok"  # decoded as RGB, resized
    for name in ("wrong_image_size", "wrong_channels", "corrupt_bytes"):
        assert report[name] != "ok" and report[name].split(":")[0] in (
            "ValueError",
            "TypeError",
            "InvalidArgumentError",
        ), report[name]
    assert report["non_utf8"] == "ok"  # tokenised without error (documented)
    assert "images must be uint8 RGB [batch, 32, 32, 3]" in exported["messages"]


@pytest.mark.backend("tensorflow")
def test_saved_model_cli_lists_the_signatures(exported):
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli is not on PATH")
    result = subprocess.run(
        [cli, "show", "--all", "--dir", exported["path"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in result.stdout
