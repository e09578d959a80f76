"""ONNX export of the two towers, checked with onnxruntime against Keras."""

import json

import keras
import numpy as np
import pytest

from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.export.exported_towers import ExportedTowers

onnxruntime = pytest.importorskip("onnxruntime")


def _run(path, inputs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    return session.run(None, {given.name: inputs})[0]


# TensorFlow exports in-process; JAX and PyTorch models go through a
# TensorFlow-backend process (`export_in_tensorflow_process`, also run by
# the torch SavedModel export tests).
@pytest.mark.backend("tensorflow")
def test_onnx_towers_equal_the_keras_model(tmp_path, capsys):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    assert cli.main(["export", "--format", "onnx", "--output", str(tmp_path)]) == 0
    images = np.random.default_rng(0).normal(size=(5, 64, 64, 3)).astype("float32")
    token_ids = np.asarray(tokenizer(["a photo of a red circle.", "a blue cross", "", "x y z"]))
    expected_images = keras.ops.convert_to_numpy(model.encode_image(images))
    expected_texts = keras.ops.convert_to_numpy(model.encode_text(token_ids))
    found_images = _run(tmp_path / "image_encoder.onnx", images)
    found_texts = _run(tmp_path / "text_encoder.onnx", token_ids.astype("int32"))
    np.testing.assert_allclose(found_images, expected_images, atol=1e-5, rtol=0)
    np.testing.assert_allclose(found_texts, expected_texts, atol=1e-5, rtol=0)
    config = json.loads((tmp_path / "onnx_config.json").read_text())
    assert config["image_preprocessing"] == model.image_preprocessing.get_config()
    assert config["image_preprocessing"]["image_size"] == 64
    assert config["context_length"] == token_ids.shape[1]
    np.testing.assert_allclose(
        config["logit_scale"], float(keras.ops.convert_to_numpy(model.logit_scale))
    )
    assert "image_encoder.onnx" in capsys.readouterr().out
    # The same graphs run through ExportedTowers, the model's predict interface.
    towers = ExportedTowers(tmp_path)
    assert (towers.runtime, towers.precision, towers.logit_bias) == ("onnxruntime", "f32", None)
    found = towers.predict({"images": images, "token_ids": token_ids})
    np.testing.assert_allclose(found["image_embeddings"], expected_images, atol=1e-5, rtol=0)
    np.testing.assert_allclose(found["text_embeddings"], expected_texts, atol=1e-5, rtol=0)
