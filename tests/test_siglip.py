"""SigLIP: towers and loading against transformers' SiglipModel, write-back,
training with fit, sigmoid zero-shot, SavedModel export."""

import json
import os

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.encoders import SigLIPTextTransformer
from keras_clip.encoders import SigLIPVisionTransformer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONTEXT = 16
VOCABULARY = 100


def _random_siglip(directory, seed=0, image_size=32):
    """A tiny random transformers SiglipModel, every tensor perturbed (so
    that a swapped or untransposed tensor shows), saved to `directory`."""
    torch.manual_seed(seed)
    config = transformers.SiglipConfig(
        text_config=dict(
            vocab_size=VOCABULARY,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=CONTEXT,
        ),
        vision_config=dict(
            image_size=image_size,
            patch_size=8,
            hidden_size=32,
            intermediate_size=40,
            num_hidden_layers=2,
            num_attention_heads=4,
        ),
    )
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        model.logit_scale.fill_(np.log(11.0))
        model.logit_bias.fill_(-9.5)
    model.save_pretrained(directory)
    return model


def _sentencepiece_directory(directory):
    """A tiny SentencePiece model trained here, saved by transformers'
    SiglipTokenizer as a SigLIP checkpoint keeps it; returns the tokenizer."""
    spm = pytest.importorskip("sentencepiece")
    rng = np.random.default_rng(0)
    words = "a photo of the red blue circle square cat dog bird café naïve über big".split()
    sentences = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(2000)]
    os.makedirs(directory, exist_ok=True)
    prefix = os.path.join(directory, "trained")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=prefix, vocab_size=40,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, num_threads=1, minloglevel=2,
    )  # fmt: skip
    reference = transformers.SiglipTokenizer(vocab_file=prefix + ".model", model_max_length=CONTEXT)
    reference.save_pretrained(directory)
    return reference


TRICKY = [
    "a photo of a cat.",
    "A Big, RED circle!!",
    "",
    "   ",
    "dog   bird\tcat",
    "ünïcode café",
    "xxxxx",
    "  leading and trailing  ",
    "über NAÏVE",
    "a-b_c/d",
    "cat\u00a0dog",
    "cat\u3000dog",
    "ＦＵＬＬ ｗｉｄｔｈ",
    "ﬁne ﬂour",
    "&amp; entity",
    "emoji 🐱 ok",
    "中文 日本語",
    "12 345 6.7",
    "it's don't",
    "'quoted' \"double\"",
    "a photo of the big blue square " * 4,
    "ǅ",
    "İstanbul",
    "new\nline",
    "tab\tsep",
    "(parens) [brackets] {braces}",
    "~`!@#$%^&*",
    "e\u0301 combining",
    "UPPER lower",
    "x" * 200,
]


@pytest.mark.backend("torch")  # TensorFlow ops on any backend: one lane
def test_sentencepiece_ids_equal_transformers_siglip_tokenizer(tmp_path):
    reference = _sentencepiece_directory(str(tmp_path / "tok"))
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "tok"))
    assert tokenizer.context_length == CONTEXT and tokenizer.end_id == tokenizer.pad_id == 1
    expected = reference(TRICKY, padding="max_length", max_length=CONTEXT, truncation=True)
    np.testing.assert_array_equal(tokenizer(TRICKY), np.array(expected["input_ids"]))
    ids, truncated = tokenizer.tokenize_and_count(TRICKY)
    assert truncated.numpy().tolist() == [len(e) > CONTEXT for e in reference(TRICKY)["input_ids"]]
    tokenizer.save(str(tmp_path / "saved"))
    again = keras_clip.Tokenizer.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again(TRICKY), ids.numpy())


def _inputs(seed=1, image_size=32):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(3, image_size, image_size, 3)).astype("float32")
    token_ids = rng.integers(2, VOCABULARY, size=(4, CONTEXT)).astype("int32")
    token_ids[0, 5:] = 1  # padding, as SigLIP's tokenizer pads
    return images, token_ids


def _reference(model, images, token_ids):
    with torch.no_grad():
        out = model(
            pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2)),
            input_ids=torch.from_numpy(token_ids.astype("int64")),
        )
    return {
        "image": out.image_embeds.numpy(),
        "text": out.text_embeds.numpy(),
        "logits": out.logits_per_image.numpy(),
    }


def _ours(model, images, token_ids):
    out = {
        **model.predict({"images": images}, verbose=0),
        **model.predict({"token_ids": token_ids}, verbose=0),
    }
    scale = float(keras.ops.convert_to_numpy(model.logit_scale))
    bias = float(keras.ops.convert_to_numpy(model.logit_bias))
    logits = scale * out["image_embeddings"] @ out["text_embeddings"].T + bias
    return {"image": out["image_embeddings"], "text": out["text_embeddings"], "logits": logits}


# 36 px in 8 px patches: 4 x 4 patches, the last 4 pixels of each side
# unseen, as so400m-patch14 at 384 px (27 x 27 patches of 378 pixels).
@pytest.mark.parametrize("image_size", [32, 36])
def test_huggingface_siglip_loads_with_equal_outputs_and_writes_back_bit_exact(
    image_size, tmp_path
):
    reference = _random_siglip(str(tmp_path / "hf"), image_size=image_size)
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    assert model.image_encoder.image_size == image_size
    assert isinstance(model.image_encoder, SigLIPVisionTransformer)
    assert isinstance(model.text_encoder, SigLIPTextTransformer)
    preprocessing = model.image_preprocessing
    assert preprocessing.mean == (0.5, 0.5, 0.5)
    assert preprocessing.fitting == {"resize_mode": "squash", "interpolation": "bilinear"}
    images, token_ids = _inputs(image_size=image_size)
    expected, found = _reference(reference, images, token_ids), _ours(model, images, token_ids)
    for key in expected:
        np.testing.assert_allclose(found[key], expected[key], atol=1e-4, rtol=0, err_msg=key)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(model.logit_scale)), 11.0, 1e-6)
    # Write back: transformers reads it, every tensor bit-identical.
    model.save_pretrained(str(tmp_path / "back"))
    reloaded = transformers.SiglipModel.from_pretrained(str(tmp_path / "back"))
    original = reference.state_dict()
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, original[name]), name
    assert set(reloaded.state_dict()) == set(original)


@pytest.mark.backend("jax")
def test_siglip_fits_classifies_with_sigmoids_and_round_trips(tmp_path):
    _random_siglip(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    images, token_ids = _inputs()
    before = model.predict({"images": images}, verbose=0)["image_embeddings"]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(
        {"images": np.repeat(images, 2, 0)[:4], "token_ids": token_ids}, batch_size=4, epochs=2,
        verbose=0,
    )  # fmt: skip
    assert np.isfinite(history.history["loss"]).all()
    after = model.predict({"images": images}, verbose=0)["image_embeddings"]
    assert not np.allclose(before, after)

    class Tokens:
        def __call__(self, texts):
            return np.stack([token_ids[i % 4] for i in range(len(texts))])

    classifier = keras_clip.ZeroShotClassifier(model, Tokens(), ["a", "b", "c"], ["{}"])
    probabilities = classifier.predict(images)
    scores = classifier.scores(images)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-scores)), rtol=1e-6)
    assert not np.allclose(probabilities.sum(1), 1.0)  # sigmoids, not a softmax
    path = str(tmp_path / "siglip.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backend("tensorflow")
def test_siglip_savedmodel_logits_carry_the_bias(tmp_path):
    import tensorflow as tf

    _random_siglip(str(tmp_path / "hf"))
    _sentencepiece_directory(str(tmp_path / "tok"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "tok"))
    keras_clip.export.export_saved_model(model, tokenizer, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    images, token_ids = _inputs()
    image = served.signatures["encode_normalized_images"](images=tf.constant(images))
    np.testing.assert_allclose(
        image["embeddings"].numpy(), _ours(model, images, token_ids)["image"], atol=1e-5
    )
    png = tf.io.encode_png(tf.zeros([32, 32, 3], tf.uint8))
    out = served.signatures["serving_default"](
        image_bytes=tf.stack([png, png]), texts=tf.constant(["a", "b c", "c"])
    )
    cosine = out["image_embeddings"].numpy() @ out["text_embeddings"].numpy().T
    np.testing.assert_allclose(out["logits"].numpy(), 11.0 * cosine - 9.5, atol=1e-4)
    # The SentencePiece tokenizer runs inside the SavedModel.
    texts = ["a photo of a cat.", "big blue square"]
    served_text = served.signatures["encode_text"](texts=tf.constant(texts))["embeddings"]
    expected = model.predict({"token_ids": tokenizer(texts)}, verbose=0)["text_embeddings"]
    np.testing.assert_allclose(served_text.numpy(), expected, atol=1e-5)


@pytest.mark.backend("torch")
def test_siglip_errors_name_the_problem(tmp_path):
    _random_siglip(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    with pytest.raises(ValueError, match="padded to context_length=16"):
        model.encode_text(np.ones((2, 8), "int32"))
    with pytest.raises(ValueError, match="format='huggingface'"):
        model.save_pretrained(str(tmp_path / "x"), format="open_clip")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["text_config"]["projection_size"] = 16
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="projection_size"):
        keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    assert os.path.exists(tmp_path / "hf" / "model.safetensors")


def test_keras_hub_siglip_preset_loads_with_equal_outputs(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    vision = keras_hub.models.SigLIPVisionEncoder(
        patch_size=8, hidden_dim=32, num_layers=2, num_heads=4, intermediate_dim=40,
        image_shape=(32, 32, 3),
    )  # fmt: skip
    text = keras_hub.models.SigLIPTextEncoder(
        vocabulary_size=VOCABULARY, embedding_dim=32, hidden_dim=32, num_layers=2, num_heads=4,
        intermediate_dim=48, max_sequence_length=CONTEXT, projection_dim=32,
    )  # fmt: skip
    backbone = keras_hub.models.SigLIPBackbone(vision, text)
    rng = np.random.default_rng(3)
    for variable in backbone.weights:
        if "position_ids" not in variable.path:
            value = keras.ops.convert_to_numpy(variable)
            variable.assign(value + 0.05 * rng.normal(size=value.shape).astype(value.dtype))
    backbone.save_to_preset(str(tmp_path / "preset"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "preset"))
    images, token_ids = _inputs()

    def unit(x):
        x = keras.ops.convert_to_numpy(x)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    expected_image = unit(backbone.get_vision_embeddings(images))
    expected_text = unit(backbone.get_text_embeddings(token_ids))
    found = _ours(model, images, token_ids)
    np.testing.assert_allclose(found["image"], expected_image, atol=1e-4, rtol=0)
    np.testing.assert_allclose(found["text"], expected_text, atol=1e-4, rtol=0)
    scale = np.exp(float(keras.ops.convert_to_numpy(backbone.siglip_head.logit_scale)))
    bias = float(keras.ops.convert_to_numpy(backbone.siglip_head.logit_bias))
    np.testing.assert_allclose(
        found["logits"], scale * expected_image @ expected_text.T + bias, atol=1e-4, rtol=0
    )
