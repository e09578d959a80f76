"""open_clip's multilingual CLIPs with an XLM-RoBERTa, mT5, NLLB (M2M100) or
RoBERTa text tower (`HFTextEncoder`, CustomTextCLIP) load with open_clip's outputs on every
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
from tests.test_open_clip_siglip import CONFIG as TINY_SIGLIP_CONFIG
from tests.test_open_clip_siglip import _register_tiny_timm_siglip as register_tiny_timm_siglip

CONTEXT = 12


def _hf_directory(directory, vocabulary=120, kind="xlm-roberta"):
    """A tiny XLM-RoBERTa or mT5 config (transformers' own classes), as
    open_clip reads `hf_model_name` with AutoConfig."""
    transformers = pytest.importorskip("transformers")
    if kind == "mt5":  # few buckets, so that the logarithmic ones are reached
        config = transformers.MT5Config(
            vocab_size=vocabulary, d_model=32, d_kv=6, d_ff=48, num_heads=4, num_layers=2,
            num_decoder_layers=1, feed_forward_proj="gated-gelu",
            relative_attention_num_buckets=8, relative_attention_max_distance=16,
            pad_token_id=0, eos_token_id=1,
        )  # fmt: skip
    elif kind == "m2m_100":  # NLLB's encoder (its decoder is built by transformers, unused)
        config = transformers.M2M100Config(
            vocab_size=vocabulary, d_model=32, encoder_layers=2, encoder_attention_heads=4,
            encoder_ffn_dim=48, decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=48,
            max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
            scale_embedding=True, activation_function="relu",
        )  # fmt: skip
    elif kind == "roberta":
        config = transformers.RobertaConfig(
            vocab_size=vocabulary, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=CONTEXT + 4, pad_token_id=1,
            bos_token_id=0, eos_token_id=2,
        )  # fmt: skip
    else:
        config = transformers.XLMRobertaConfig(
            vocab_size=vocabulary, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=CONTEXT + 4, pad_token_id=1,
            bos_token_id=0, eos_token_id=2,
        )  # fmt: skip
    config.save_pretrained(str(directory))
    return str(directory)


def _config(hf_directory, projection="mlp", pooler="mean_pooler", siglip=False):
    """With `siglip`, NLLB-SigLIP's form: timm's SigLIP ViT (tiny, of base's
    head count: tests.test_open_clip_siglip) and a sigmoid logit bias."""
    text = {"hf_model_name": hf_directory, "hf_tokenizer_name": hf_directory}
    text.update(hf_pooler_type=pooler, hf_model_pretrained=False, context_length=CONTEXT)
    if projection != "mlp":
        text["hf_proj_type"] = projection
    if siglip:
        register_tiny_timm_siglip()
        return {
            "embed_dim": 48,  # the ViT's width: timm_proj "none"
            "init_logit_bias": -10,
            "vision_cfg": dict(TINY_SIGLIP_CONFIG["vision_cfg"]),
            "text_cfg": text,
        }
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


def _batch(vocabulary=120, kind="xlm-roberta"):
    """Captions of 12, 7 and 3 tokens: XLM-R's <s> (0) ... </s> (2), then
    <pad> (1); mT5's ... </s> (1), then <pad> (0)."""
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, 32, 32, 3)).astype("float32")
    # NLLB starts with a language code (here id 100), ends with </s> (2), pads with 1.
    start, end, pad = {"mt5": (None, 1, 0), "m2m_100": (100, 2, 1)}.get(kind, (0, 2, 1))
    token_ids = np.full((3, CONTEXT), pad, "int32")
    for row, length in enumerate((CONTEXT, 7, 3)):
        token_ids[row, :length] = rng.integers(3, vocabulary, size=length)
        token_ids[row, length - 1] = end
        if start is not None:
            token_ids[row, 0] = start
    return images, token_ids


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize(
    "kind, projection, pooler, siglip",
    [
        ("xlm-roberta", "mlp", "mean_pooler", False),
        ("xlm-roberta", "linear", "mean_pooler", False),
        ("mt5", "mlp", "mean_pooler", False),
        ("m2m_100", "linear", "cls_pooler", False),  # NLLB-CLIP's text tower
        ("m2m_100", "linear", "cls_pooler", True),  # NLLB-SigLIP
        ("roberta", "mlp", "mean_pooler", False),
    ],
)
def test_hf_text_clip_loads_with_open_clips_outputs_and_writes_back(
    kind, projection, pooler, siglip, tmp_path
):
    config = _config(_hf_directory(tmp_path / kind, kind=kind), projection, pooler, siglip)
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    encoder = {"mt5": "T5TextEncoder", "m2m_100": "M2M100TextEncoder"}.get(
        kind, "RobertaTextEncoder"
    )
    assert type(model.text_encoder).__name__ == encoder
    _assert_same_outputs(model, reference, *_batch(kind=kind))
    if siglip:
        _assert_same_sigmoid_loss(model, reference, *_batch(kind=kind))
    # Padding never changes a caption's embedding (masked keys; RoBERTa's
    # positions count the real tokens, T5's are relative).
    images, token_ids = _batch(kind=kind)
    short = model.predict({"images": images, "token_ids": token_ids[:, :8]}, verbose=0)
    whole = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    np.testing.assert_allclose(
        short["text_embeddings"][1:], whole["text_embeddings"][1:], atol=1e-6, rtol=0
    )

    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")
    written = json.loads((tmp_path / "written" / "open_clip_config.json").read_text())
    assert written["model_cfg"]["text_cfg"]["hf_model_name"] == config["text_cfg"]["hf_model_name"]
    if siglip:
        assert written["model_cfg"]["vision_cfg"] == config["vision_cfg"]


def _assert_same_sigmoid_loss(model, reference, images, token_ids):
    """NLLB-SigLIP: the logit bias, open_clip's SigLIP preprocessing, and
    the loss equal open_clip's `SigLipLoss` on open_clip's embeddings."""
    import torch

    open_clip = import_open_clip()
    assert isinstance(model.objective, keras_clip.objectives.SigLIPLoss)
    bias = float(keras.ops.convert_to_numpy(model.logit_bias))
    assert bias == float(reference.logit_bias.detach())
    assert model.image_preprocessing.mean == (0.5, 0.5, 0.5)
    assert model.image_preprocessing.resize_mode == "squash"
    with torch.no_grad():
        image, text, scale, reference_bias = reference(
            torch.from_numpy(images.transpose(0, 3, 1, 2)),
            torch.from_numpy(token_ids.astype("int64")),
        )
        expected = open_clip.loss.SigLipLoss()(image, text, scale, reference_bias)
    found = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    loss, _ = model.objective.compute(found["image_embeddings"], found["text_embeddings"])
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(loss)), float(expected), rtol=1e-5)


@pytest.mark.backend("tensorflow")
@pytest.mark.parametrize("kind", ["xlm-roberta", "mt5", "m2m_100", "nllb-siglip", "roberta"])
def test_an_hf_text_clip_trains_classifies_with_its_tokenizer_and_serves(kind, tmp_path):
    """Each tower's SentencePiece tokenizer from the open_clip directory
    (ids as open_clip's HFTokenizer gives them: tests/test_unigram_tokenizers.py),
    fit, the .keras round trip, zero-shot and the SavedModel."""
    import tensorflow as tf

    from keras_clip.datasets import shapes
    from keras_clip.export import export_saved_model
    from tests.test_unigram_tokenizers import train_fairseq_model
    from tests.test_unigram_tokenizers import train_t5_model

    files = tmp_path / "tokenizer"
    files.mkdir()
    if kind == "mt5":
        train_t5_model(str(files))
    elif kind in ("m2m_100", "nllb-siglip"):  # NLLB's tokenizer.json, as its checkpoint ships it
        from tests.test_nllb_tokenizer import nllb_checkpoint

        nllb_checkpoint(tmp_path / "nllb", str(files))
    elif kind == "roberta":  # GPT-2's byte-level BPE, keras-hub's tokenizer in the graph
        from tests.test_roberta_tokenizer import roberta_checkpoint

        roberta_checkpoint(str(files))
    else:
        train_fairseq_model(str(files))
    size = keras_clip.Tokenizer.from_pretrained(str(files)).vocabulary_size
    siglip = kind == "nllb-siglip"
    kind = "m2m_100" if siglip else kind
    projection, pooler = ("linear", "cls_pooler") if kind == "m2m_100" else ("mlp", "mean_pooler")
    config = _config(_hf_directory(tmp_path / kind, size, kind), projection, pooler, siglip)
    _open_clip_directory(config, tmp_path / "open_clip")
    for name in os.listdir(files):
        shutil.copy(files / name, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "open_clip"))
    assert tokenizer.context_length == CONTEXT
    assert tokenizer.pad_id == model.text_encoder.pad_token_id

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
    if siglip:  # each class's own sigmoid, as SigLIP scores
        assert np.all((probabilities > 0) & (probabilities < 1))
        assert probabilities.sum(axis=1).max() < 0.5  # a bias of -10 after a few steps
    else:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    text = served.signatures["encode_text"](texts=tf.constant(data["captions"]))
    np.testing.assert_allclose(
        next(iter(text.values())).numpy(), before["text_embeddings"], atol=1e-5
    )


@pytest.mark.backend("torch")
def test_relative_position_buckets_are_t5s():
    from transformers.models.t5.modeling_t5 import T5Attention

    from keras_clip.encoders.t5_text import relative_position_buckets

    for length, buckets, distance in ((77, 32, 128), (12, 8, 16), (300, 32, 128), (5, 4, 8)):
        relative = torch_arange(-(length - 1), length)
        expected = T5Attention._relative_position_bucket(
            relative, bidirectional=True, num_buckets=buckets, max_distance=distance
        )
        found = relative_position_buckets(length, buckets, distance)
        np.testing.assert_array_equal(found, expected.numpy(), err_msg=str(length))


def torch_arange(start, stop):
    import torch

    return torch.arange(start, stop)


@pytest.mark.backend("torch")
def test_the_built_in_names_build_and_what_is_not_built_is_refused_by_name(tmp_path):
    from keras_clip.models.architectures import open_clip_architectures

    shape = keras_clip.models.architecture_config("xlm-roberta-large-ViT-H-14")
    assert shape["roberta"]["width"] == 1024 and shape["roberta"]["num_layers"] == 24
    assert shape["vision_width"] == 1280 and shape["vision_heads"] == 16
    names = open_clip_architectures()
    assert "xlm-roberta-base-ViT-B-32" in names and "roberta-ViT-B-32" in names
    assert "mt5-base-ViT-B-32" in names
    open_clip = import_open_clip()
    configs = os.path.join(os.path.dirname(open_clip.__file__), "model_configs")

    def read(name):
        with open(os.path.join(configs, f"{name}.json")) as f:
            return json.load(f)

    assert "nllb-clip-base" in names and "nllb-clip-large" in names
    nllb = keras_clip.models.architecture_config("nllb-clip-large")["m2m100"]
    assert (nllb["num_layers"], nllb["intermediate_size"], nllb["pooling"]) == (24, 8192, "cls")
    config = _config(_hf_directory(tmp_path / "xlm-r-cls"), pooler="cls_pooler")
    with pytest.raises(ValueError, match="hf_pooler_type='cls_pooler'"):
        hf_text.from_open_clip_hf_text_config(config)
    mt5 = keras_clip.models.architecture_config("mt5-xl-ViT-H-14")["t5"]
    assert (mt5["width"], mt5["num_layers"], mt5["num_heads"]) == (2048, 24, 32)
    config = _config(_hf_directory(tmp_path / "xlm-r"))
    config["text_cfg"]["hf_pooler_type"] = "max_pooler"
    with pytest.raises(ValueError, match="hf_pooler_type='max_pooler'"):
        hf_text.from_open_clip_hf_text_config(config)


@pytest.mark.backend("torch")
def test_timm_siglip_sizes_are_timms_and_the_nllb_siglip_names_build_them():
    """NLLB-SigLIP's image towers as timm builds them, and the options that
    would compute something else refused by name."""
    import_open_clip()
    import timm
    import torch

    from keras_clip.models.architectures import open_clip_architectures
    from keras_clip.models.timm_siglip import TIMM_SIGLIP_SHAPES

    for size, expected in TIMM_SIGLIP_SHAPES.items():
        patch = 14 if size == "so400m" else 16
        with torch.device("meta"):
            tower = timm.create_model(f"vit_{size}_patch{patch}_siglip_384", num_classes=0)
        block = tower.blocks[0]
        found = (
            tower.embed_dim,
            len(tower.blocks),
            block.attn.num_heads,
            block.mlp.fc1.out_features,
        )
        assert found == expected, size
    shape = keras_clip.models.architecture_config("nllb-clip-large-siglip")
    tower = ("vision", "vision_width", "vision_layers", "vision_heads", "patch_size", "image_size")
    assert tuple(shape[k] for k in tower) == ("siglip", 1152, 27, 16, 14, 384)
    assert shape["m2m100"]["num_layers"] == 24 and shape["logit_bias"] == -10
    base = open_clip_architectures()["nllb-clip-base-siglip"]
    for section, key, value in [
        ("vision_cfg", "image_size", 224),  # timm keeps its 384 px positions
        ("vision_cfg", "timm_pool", "avg"),
        ("vision_cfg", "timm_proj", "linear"),
        (None, "embed_dim", 512),  # no projection after the attention pool
    ]:
        config = json.loads(json.dumps(base))
        (config[section] if section else config)[key] = value
        with pytest.raises(ValueError, match=key):
            hf_text.from_open_clip_hf_text_config(config)
