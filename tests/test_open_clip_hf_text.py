"""open_clip's multilingual CLIPs with an XLM-RoBERTa text tower
(`HFTextEncoder`, CustomTextCLIP) load with open_clip's outputs on every
backend, write back so that open_clip reloads them bit for bit, train,
classify zero-shot with their own tokenizer and serve as a SavedModel
(keras_clip.encoders.RobertaTextEncoder, keras_clip.models.hf_text,
keras_clip.pretrained.open_clip_hf_text)."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models import hf_text
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model
from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit
from tests.test_open_clip_eva import _assert_same_outputs

CONTEXT = 12


def _hf_directory(directory, vocabulary=120):
    """A tiny XLM-RoBERTa config (transformers' own class), as open_clip
    reads `hf_model_name` with AutoConfig."""
    transformers = pytest.importorskip("transformers")
    config = transformers.XLMRobertaConfig(
        vocab_size=vocabulary, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=CONTEXT + 4, pad_token_id=1,
        bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    config.save_pretrained(str(directory))
    return str(directory)


def _config(hf_directory, projection="mlp"):
    text = {"hf_model_name": hf_directory, "hf_tokenizer_name": hf_directory}
    text.update(hf_pooler_type="mean_pooler", hf_model_pretrained=False, context_length=CONTEXT)
    if projection != "mlp":
        text["hf_proj_type"] = projection
    vision = {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16}
    return {"embed_dim": 24, "vision_cfg": vision, "text_cfg": text}


def _open_clip_directory(config, directory):
    import_open_clip()
    directory.mkdir()
    reference = random_open_clip_model(
        dict(config, custom_text=True), directory / "open_clip_model.safetensors"
    )
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    return reference


def _batch(vocabulary=120):
    """Captions of 12, 7 and 3 tokens: <s> ... </s>, then <pad> (1)."""
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, 32, 32, 3)).astype("float32")
    token_ids = np.ones((3, CONTEXT), "int32")
    for row, length in enumerate((CONTEXT, 7, 3)):
        token_ids[row, :length] = rng.integers(3, vocabulary, size=length)
        token_ids[row, 0], token_ids[row, length - 1] = 0, 2
    return images, token_ids


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize("projection", ["mlp", "linear"])
def test_xlm_roberta_clip_loads_with_open_clips_outputs_and_writes_back(projection, tmp_path):
    config = _config(_hf_directory(tmp_path / "xlm-r"), projection)
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert isinstance(model.text_encoder, keras_clip.encoders.RobertaTextEncoder)
    _assert_same_outputs(model, reference, *_batch())
    # Padding never changes a caption's embedding (positions count real tokens).
    images, token_ids = _batch()
    short = model.predict({"images": images, "token_ids": token_ids[:, :8]}, verbose=0)
    whole = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    np.testing.assert_allclose(
        short["text_embeddings"][1:], whole["text_embeddings"][1:], atol=1e-6, rtol=0
    )

    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")
    written = json.loads((tmp_path / "written" / "open_clip_config.json").read_text())
    assert written["model_cfg"]["text_cfg"]["hf_model_name"] == config["text_cfg"]["hf_model_name"]


@pytest.mark.backend("tensorflow")
def test_an_xlm_roberta_clip_trains_classifies_with_its_tokenizer_and_serves(tmp_path):
    """XLM-R's SentencePiece tokenizer from the open_clip directory (ids as
    open_clip's HFTokenizer gives them: tests/test_unigram_tokenizers.py),
    fit, the .keras round trip, zero-shot and the SavedModel."""
    import tensorflow as tf

    from keras_clip.datasets import shapes
    from keras_clip.export import export_saved_model
    from tests.test_unigram_tokenizers import train_fairseq_model

    (tmp_path / "xlm-r").mkdir()
    train_fairseq_model(str(tmp_path / "xlm-r"))
    size = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "xlm-r")).vocabulary_size
    config = _config(_hf_directory(tmp_path / "xlm-r", vocabulary=size))
    _open_clip_directory(config, tmp_path / "open_clip")
    shutil.copy(tmp_path / "xlm-r" / "sentencepiece.bpe.model", tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "open_clip"))
    assert tokenizer.context_length == CONTEXT and tokenizer.pad_id == 1

    data = shapes.load(12, image_size=32, seed=5)
    images = model.image_preprocessing.normalize(data["images"])
    batch = {"images": images, "token_ids": tokenizer(data["captions"])}
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    losses = model.fit(batch, batch_size=12, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(str(tmp_path / "model.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "model.keras"))
    before, after = model.predict(batch, verbose=0), reloaded.predict(batch, verbose=0)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-6, rtol=0)

    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, ["circle", "square"])
    probabilities = classifier.predict(images)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    text = served.signatures["encode_text"](texts=tf.constant(data["captions"]))
    np.testing.assert_allclose(
        next(iter(text.values())).numpy(), before["text_embeddings"], atol=1e-5
    )


@pytest.mark.backend("torch")
def test_the_built_in_names_build_and_what_is_not_built_is_refused_by_name(tmp_path):
    from keras_clip.models.architectures import open_clip_architectures

    shape = keras_clip.models.architecture_config("xlm-roberta-large-ViT-H-14")
    assert shape["roberta"]["width"] == 1024 and shape["roberta"]["num_layers"] == 24
    assert shape["vision_width"] == 1280 and shape["vision_heads"] == 16
    names = open_clip_architectures()
    assert "xlm-roberta-base-ViT-B-32" in names and "roberta-ViT-B-32" not in names
    open_clip = import_open_clip()
    configs = os.path.join(os.path.dirname(open_clip.__file__), "model_configs")

    def read(name):
        with open(os.path.join(configs, f"{name}.json")) as f:
            return json.load(f)

    with pytest.raises(ValueError, match="byte-level BPE tokenizer"):
        hf_text.from_open_clip_hf_text_config(read("roberta-ViT-B-32"))
    with pytest.raises(ValueError, match="hf_pooler_type='cls_pooler'"):
        hf_text.from_open_clip_hf_text_config(read("nllb-clip-base"))
    with pytest.raises(ValueError, match="google/mt5-base"):
        hf_text.from_open_clip_hf_text_config(read("mt5-base-ViT-B-32"))
    config = _config(_hf_directory(tmp_path / "xlm-r"))
    config["text_cfg"]["hf_pooler_type"] = "max_pooler"
    with pytest.raises(ValueError, match="hf_pooler_type='max_pooler'"):
        hf_text.from_open_clip_hf_text_config(config)
