"""open_clip's CoCa (`coca_ViT-B-32`, `coca_ViT-L-14`, `coca_base`): the
towers, the attentional pooler and the caption decoder load with open_clip's
outputs on every backend, write back so that open_clip reloads them bit for
bit, train on CoCa's loss, caption as open_clip's `generate` does, and
refuse what keras-clip cannot build by name (keras_clip.CoCa,
keras_clip.encoders.MultimodalDecoder, keras_clip.models.open_clip_coca,
keras_clip.pretrained.open_clip_coca)."""

import json

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models import open_clip_coca
from tests.helpers import assert_serves_the_embeddings
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model
from tests.test_open_clip_eva import _assert_open_clip_reloads_bit_for_bit
from tests.test_open_clip_eva import _batch
from tests.test_open_clip_hf_text import _batch as roberta_batch
from tests.test_open_clip_hf_text import _hf_directory


def _config(attentional_pool=True):
    """A shrunken coca_ViT-B-32 (an attentional pooler of 9 queries), or
    coca_base's form (none: the decoder reads the ViT's patch tokens)."""
    vision = {"image_size": 32, "layers": 2, "width": 48, "patch_size": 8, "head_width": 16}
    if attentional_pool:
        vision.update(attentional_pool=True, attn_pooler_heads=4, attn_pooler_queries=9)
    else:
        vision["width"] = 32
    text = {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2}
    decoder = {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2}
    return {
        "embed_dim": 32,
        "vision_cfg": {**vision, "output_tokens": True},
        "text_cfg": {**text, "embed_cls": True, "output_tokens": True},
        "multimodal_cfg": {**decoder, "attn_pooler_heads": 4},
        "custom_text": True,
    }


def _roberta_config(hf_directory):
    """A shrunken coca_roberta-ViT-B-32: a RoBERTa text tower (transformers'
    own config, mean-pooled, its every token's features to the decoder)
    beside coca_base's ViT form; the decoder's vocabulary is text_cfg's."""
    config = _config(attentional_pool=False)
    config["text_cfg"] = {
        "hf_model_name": hf_directory,
        "hf_tokenizer_name": hf_directory,
        "hf_proj_type": "linear",
        "hf_model_pretrained": False,
        "context_length": 12,
        "vocab_size": 120,
        "width": 32,
        "output_tokens": True,
    }
    return config


def _open_clip_directory(config, directory):
    import_open_clip()
    directory.mkdir()
    reference = random_open_clip_model(config, directory / "open_clip_model.safetensors")
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    return reference


def _reference_outputs(reference, images, token_ids):
    import torch

    with torch.no_grad():
        return reference(
            torch.from_numpy(images.transpose(0, 3, 1, 2)),
            torch.from_numpy(token_ids.astype("int64")),
        )


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize("form", ["attn_pool", "patch_tokens", "roberta"])
def test_coca_loads_with_open_clips_outputs_and_writes_back(form, tmp_path):
    images, token_ids = _batch()
    if form == "roberta":
        token_ids = roberta_batch(kind="roberta")[1]  # <s> ... </s>, then <pad> (1)
        config = _roberta_config(_hf_directory(tmp_path / "roberta", kind="roberta"))
    else:
        config = _config(attentional_pool=form == "attn_pool")
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert isinstance(model, keras_clip.CoCa)
    if form == "roberta":
        assert type(model.text_encoder).__name__ == "RobertaTextEncoder"
    expected = _reference_outputs(reference, images, token_ids)
    found = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    for ours, theirs in (
        ("image_embeddings", "image_features"),
        ("text_embeddings", "text_features"),
        ("caption_logits", "logits"),
    ):
        np.testing.assert_allclose(found[ours], expected[theirs].numpy(), atol=1e-4, rtol=0)
    # The loss: open_clip's CoCaLoss at open_clip's default weights (1, 2).
    open_clip = import_open_clip()
    contrastive, captions = open_clip.loss.CoCaLoss(caption_loss_weight=2.0, clip_loss_weight=1.0)(
        **{k: expected[k] for k in ("image_features", "text_features", "logits", "labels")},
        logit_scale=expected["logit_scale"],
    )
    inputs = {"images": images, "token_ids": token_ids}
    # (predict's outputs: an eager call would run JAX op by op)
    loss = model.compute_loss(inputs, y_pred=found, training=False)
    total = float(contrastive + captions)
    assert abs(float(keras.ops.convert_to_numpy(loss)) - total) < 1e-4 * total
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")


@pytest.mark.backend("torch")
@pytest.mark.parametrize("form", ["attn_pool", "roberta"])
def test_a_coca_trains_on_both_losses_and_round_trips(form, tmp_path):
    images, token_ids = _batch()
    if form == "roberta":
        config = _roberta_config(_hf_directory(tmp_path / "roberta", kind="roberta"))
        token_ids = roberta_batch(kind="roberta")[1]
    else:
        config = _config()
    _open_clip_directory(config, tmp_path / "coca")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "coca"))
    data = {"images": np.tile(images, (4, 1, 1, 1)), "token_ids": np.tile(token_ids, (4, 1))}
    data["token_ids"][3:6, 1] += 1
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(data, batch_size=12, epochs=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["caption_loss"][-1] < history["caption_loss"][0]
    model.save(str(tmp_path / "coca.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "coca.keras"))
    assert isinstance(reloaded, keras_clip.CoCa)
    before, after = model.predict(data, verbose=0), reloaded.predict(data, verbose=0)
    assert sorted(before) == ["caption_logits", "image_embeddings", "text_embeddings"]
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-6, rtol=0)


def _open_clip_generate(reference, images, **options):
    """open_clip's own `CoCa.generate` ("top_k" mode). open_clip 3.3 turns
    generation off when `transformers.BeamSearchScorer` is missing, which
    transformers 5 removed; its "top_k" and "top_p" loops use only warpers
    transformers 5 still has, so they are switched back on here."""
    import torch
    import transformers
    from open_clip import coca_model

    coca_model._has_transformers = True
    coca_model.GENERATION_TYPES["top_k"] = transformers.TopKLogitsWarper
    with torch.no_grad():
        ids = reference.generate(
            torch.from_numpy(images.transpose(0, 3, 1, 2)), generation_type="top_k", **options
        )
    return ids.numpy()


@pytest.mark.backend("tensorflow", "jax", "torch")
def test_greedy_captions_are_open_clips(tmp_path):
    reference = _open_clip_directory(_config(), tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    images = _batch()[0]
    # An end id that this random decoder picks for two of the three images
    # (they end early and are padded); the third runs to max_length.
    ids = dict(sot_token_id=97, eos_token_id=20)
    expected = _open_clip_generate(reference, images, top_k=1, seq_len=10, min_seq_len=3, **ids)
    found = model.generate(images, max_length=10, min_length=3, start_token_id=97, end_token_id=20)
    np.testing.assert_array_equal(found, expected)
    assert found.dtype == np.int32 and found.shape == (3, 10)
    assert (found[:2, -1] == 0).all() and found[2, -1] == 20
    # Sampling: top_k=1 is greedy; a seed repeats itself; top_p keeps the mass.
    sampled = model.generate(images, max_length=10, min_length=3, method="sample", top_k=1,
                             start_token_id=97, end_token_id=20, seed=3)  # fmt: skip
    np.testing.assert_array_equal(sampled, expected)
    options = dict(max_length=10, method="sample", top_p=0.9, temperature=2.0, seed=5)
    first = model.generate(images, start_token_id=97, end_token_id=98, **options)
    again = model.generate(images, start_token_id=97, end_token_id=98, **options)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="method"):
        model.generate(images, max_length=10, method="beam_search")
    with pytest.raises(ValueError, match="max_length"):
        model.generate(images, max_length=13)
    with pytest.raises(ValueError, match="start_token_id=49406 is outside the vocabulary"):
        model.generate(images, max_length=10)  # OpenAI's ids; a 100-token vocabulary


@pytest.mark.backend("jax", "torch")
def test_greedy_captions_from_a_roberta_tower_are_open_clips(tmp_path):
    """RoBERTa attends both ways: the caption buffer's unwritten positions
    hold its padding, so each step sees what open_clip's growing caption
    shows it, and ended rows are padded with RoBERTa's <pad> (1). open_clip
    needs pad_token_id=1 said: at its pad_id (0) RoBERTa's <s> reads as
    padding and every caption ends at once."""
    config = _roberta_config(_hf_directory(tmp_path / "roberta", kind="roberta"))
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    images = _batch()[0]
    ids = dict(sot_token_id=0, eos_token_id=115, pad_token_id=1)  # an end it picks early
    expected = _open_clip_generate(reference, images, top_k=1, seq_len=10, min_seq_len=3, **ids)
    found = model.generate(images, max_length=10, min_length=3, start_token_id=0, end_token_id=115)
    np.testing.assert_array_equal(found, expected)
    assert (found[:, -1] == 1).any()  # a caption ended early and was padded
    token_ids = roberta_batch(kind="roberta")[1]
    token_ids[0, 3] = 120  # the decoder (and here the tower) has 120 ids
    with pytest.raises(ValueError, match="id 120 is beyond the decoder's vocabulary of 120"):
        model.fit({"images": images, "token_ids": token_ids}, verbose=0)


def test_coca_options_keras_clip_cannot_build_are_refused_by_name():
    shape = keras_clip.models.architecture_config("coca_ViT-B-32")
    assert shape["coca"] == {
        "decoder_vocabulary_size": 49408,
        "attention_pool_queries": 256,
        "attention_pool_heads": 8,
        "text_class_token": True,
        "pad_token_id": 0,
        "decoder_width": 512,
        "decoder_heads": 8,
        "decoder_layers": 12,
        "decoder_layer_scale": None,
    }
    assert (
        keras_clip.models.architecture_config("coca_base")["coca"]["attention_pool_queries"] is None
    )
    for section, key, value in [
        ("vision_cfg", "attentional_pool", "parallel"),
        ("text_cfg", "correct_cls_mask", True),
        ("multimodal_cfg", "cross_attn_ratio", 2),
        ("vision_cfg", "pos_embed_type", "sin_cos_2d"),
    ]:
        config = _config()
        config[section][key] = value
        with pytest.raises(ValueError, match=key):
            open_clip_coca.from_open_clip_coca_config(config)
    # coca_roberta-ViT-B-32: RoBERTa's 50,265 ids, the decoder's 49,408 (open_clip's).
    roberta = keras_clip.models.architecture_config("coca_roberta-ViT-B-32")
    assert roberta["roberta"]["vocabulary_size"] == 50265 and roberta["roberta"]["output_tokens"]
    assert roberta["coca"]["decoder_vocabulary_size"] == 49408
    assert roberta["coca"]["attention_pool_queries"] is None
    with pytest.raises(ValueError, match="mean-pooled RoBERTa"):
        config = keras_clip.models.architectures.open_clip_architectures()["coca_roberta-ViT-B-32"]
        config = json.loads(json.dumps(config))
        config["text_cfg"]["hf_model_name"] = "google/mt5-base"
        open_clip_coca.from_open_clip_coca_config(config)
    with pytest.raises(ValueError, match="CoCa model, not CLIPLite"):
        keras_clip.CLIPLite.from_architecture("coca_ViT-B-32")
    encoders = keras_clip.encoders
    vision = encoders.VisionTransformer(32, 8, 32, 1, 2)
    text = encoders.TextTransformer(100, 12, 32, 1, 2, class_token=True, output_tokens=True)
    decoder = encoders.MultimodalDecoder(100, 32, 1, 2)
    with pytest.raises(ValueError, match="image_encoder must return its tokens"):
        keras_clip.CoCa(vision, text, decoder, 32)
    with pytest.raises(ValueError, match="pooling='token'"):
        encoders.VisionTransformer(32, 8, 32, 1, 2, pooling="mean", output_tokens=True)


@pytest.mark.backend("tensorflow")
def test_a_coca_classifies_zero_shot_and_serves_its_towers_as_a_saved_model(tmp_path):

    from keras_clip.datasets import shapes
    from keras_clip.export import export_saved_model

    data = shapes.load(8, image_size=32, seed=5)
    tokenizer = keras_clip.Tokenizer.from_corpus(data["captions"], 60, 12)
    config = _config()
    for section in ("text_cfg", "multimodal_cfg"):
        config[section]["vocab_size"] = tokenizer.vocabulary_size
    _open_clip_directory(config, tmp_path / "coca")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "coca"))
    images = model.image_preprocessing.normalize(data["images"])
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, ["circle", "square"])
    probabilities = classifier.predict(images)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    assert_serves_the_embeddings(tmp_path / "served", model, tokenizer(data["captions"]), images)
