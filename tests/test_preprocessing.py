"""`ImagePreprocessing`: one object owned by the model, checked, and kept
through `.keras`, `save_pretrained` (read back by transformers) and the
data pipeline. (The SavedModel round trip: tests/test_export.py.)"""

import json

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models.preprocessing import upgrade_preprocessing_config

SQUASH = keras_clip.ImagePreprocessing(
    None, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), resize_mode="squash", interpolation="bilinear"
)


def _left_quarter_bright():
    """40 x 80: a centre crop of the square leaves the bright quarter out."""
    image = np.zeros((40, 80, 3), "uint8")
    image[:, :20] = 200
    return image


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"resize_mode": "crop"}, "Unknown resize_mode 'crop'"),
        ({"interpolation": "nearest"}, "Unknown interpolation 'nearest'"),
        ({"std": (0.2, 0.0, 0.3)}, "standard deviations positive"),
        ({"mean": (0.5, 0.5)}, "3 values each"),
        ({"image_size": 0}, "image_size must be a positive integer"),
    ],
)
def test_bad_settings_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        keras_clip.ImagePreprocessing(**changes)


def test_normalize_is_the_pipeline_normalisation():
    import tensorflow as tf

    from keras_clip.data.images import normalize

    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype("uint8")
    expected = (pixels / 255.0 - np.array(SQUASH.mean)) / np.array(SQUASH.std)
    np.testing.assert_allclose(SQUASH.normalize(pixels), expected, rtol=1e-5, atol=1e-6)
    in_graph = normalize(tf.constant(pixels), SQUASH).numpy()
    np.testing.assert_allclose(in_graph, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        SQUASH.normalize(pixels.astype("float32"))


def test_the_model_owns_it_and_keras_files_keep_it(tmp_path):
    model = keras_clip.CLIP.from_architecture("tiny-vit", image_preprocessing=SQUASH)
    assert model.image_preprocessing == SQUASH.with_size(32)  # the tower's size
    path = str(tmp_path / "m.keras")
    model.save(path)
    assert keras.saving.load_model(path).image_preprocessing == SQUASH.with_size(32)
    default = keras_clip.CLIP.from_architecture("tiny-vit").image_preprocessing
    assert default == keras_clip.ImagePreprocessing(32)  # OpenAI's CLIP settings


def test_configs_saved_before_the_object_load_with_their_settings():
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    config = model.get_config()
    del config["image_preprocessing"]
    config.update(
        image_mean=[0.5, 0.4, 0.3],
        image_std=[0.2, 0.25, 0.3],
        image_resize_mode="squash",
        image_interpolation="bilinear",
    )
    assert "image_mean" not in upgrade_preprocessing_config(config)
    loaded = keras_clip.CLIP.from_config(config)
    assert loaded.image_preprocessing == SQUASH.with_size(32)


@pytest.mark.backend("torch")
@pytest.mark.parametrize("resize_mode", ["shortest", "squash"])
def test_hugging_face_write_back_says_the_resize_transformers_applies(resize_mode, tmp_path):
    """transformers' own CLIPImageProcessor, loaded from the written
    directory, crops (shortest) or squashes exactly where we do; and
    `from_pretrained` reads the same settings back."""
    transformers = pytest.importorskip("transformers")
    preprocessing = keras_clip.ImagePreprocessing(
        None, SQUASH.mean, SQUASH.std, resize_mode, "bicubic"
    )
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", activation="gelu", image_preprocessing=preprocessing
    )
    model.save_pretrained(str(tmp_path / "hf"))
    again = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    assert again.image_preprocessing == model.image_preprocessing
    processor = transformers.CLIPImageProcessor.from_pretrained(str(tmp_path / "hf"))
    theirs = processor(images=_left_quarter_bright(), return_tensors="np")["pixel_values"][0]
    assert theirs.shape == (3, 32, 32)
    bright = (200 / 255 - SQUASH.mean[0]) / SQUASH.std[0]
    if resize_mode == "squash":  # the whole width kept: the left quarter bright
        assert theirs[0, :, :6].mean() == pytest.approx(bright, abs=0.05)
        assert theirs[0, :, 10:].max() < 0
    else:  # the centre crop leaves the bright quarter out
        assert theirs[0, :, 2:].max() < 0
    config = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert config["image_mean"] == list(SQUASH.mean)


@pytest.mark.backend("torch")
def test_a_resize_hugging_face_cannot_express_is_refused_and_open_clip_keeps_it(tmp_path):
    longest = keras_clip.ImagePreprocessing(resize_mode="longest")
    model = keras_clip.CLIP.from_architecture("tiny-vit", image_preprocessing=longest)
    with pytest.raises(ValueError, match="'longest' has no CLIPImageProcessor"):
        model.save_pretrained(str(tmp_path / "hf"))
    model.save_pretrained(str(tmp_path / "oc"), format="open_clip")
    again = keras_clip.CLIP.from_pretrained(str(tmp_path / "oc"))
    assert again.image_preprocessing == longest.with_size(32)


def test_the_pipeline_and_load_images_take_it_whole(tmp_path):
    from PIL import Image

    image = _left_quarter_bright()
    path = str(tmp_path / "wide.png")
    Image.fromarray(image).save(path)
    model = keras_clip.CLIP.from_architecture("tiny-vit", image_preprocessing=SQUASH)
    squashed = keras_clip.data.load_images([path], model)[0]
    cropped = keras_clip.data.load_images([path], 32)[0]  # OpenAI's: the centre
    assert squashed[:, :6].min() > 150 and squashed[:, 10:].max() < 50
    assert cropped[:, 2:].max() < 50
    tokenizer = keras_clip.Tokenizer.from_corpus(["a wide picture"], 20, context_length=8)
    batches = keras_clip.data.image_text_dataset(
        ([image], ["a wide picture"]), tokenizer, model, 1, training=False
    )
    images = next(iter(batches))["images"].numpy()[0]
    np.testing.assert_allclose(images, SQUASH.normalize(squashed), atol=1e-5)
