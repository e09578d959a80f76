"""MetaCLIP 2 ("worldwide"): transformers' `MetaClip2Model` directories in
and out, with the XLM-V tokenizer (`XLMRobertaTokenizer`) in the graph.

The reference is transformers 5's `MetaClip2Model` with a tiny random config
whose every LayerNorm and bias is moved off its initial value, and whose
vocabulary is a fairseq-ordered SentencePiece model trained here (see
`test_unigram_tokenizers.py`). XLM-V's end token is id 2, never the
largest id of a row: a tower that pooled at the largest id (CLIPModel's
rule for eos_token_id 2) would give other embeddings.
"""

import json
import os

import numpy as np
import pytest

import keras_clip
from keras_clip.pretrained import read_safetensors
from tests.helpers import random_open_clip_model
from tests.helpers import to_numpy
from tests.test_pretrained import TOLERANCE
from tests.test_pretrained import _assert_match
from tests.test_pretrained import _keras_outputs
from tests.test_unigram_tokenizers import train_fairseq_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONTEXT = 16
CAPTIONS = [
    "a photo of a cat",
    "une photo d'un chat",
    "猫の写真",
    "фотография кошки",
    "ein Foto einer Katze and a quick brown fox over the lazy dog seven times",
]


def _tokenizer_files(directory):
    os.makedirs(directory, exist_ok=True)
    train_fairseq_model(directory)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}, f)


def _perturbed(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or "layrnorm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A MetaClip2Model directory as the Hub has them: weights, config,
    image processor and the XLM-V tokenizer files."""
    directory = str(tmp_path_factory.mktemp("metaclip2") / "checkpoint")
    _tokenizer_files(directory)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    tower = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    config = transformers.MetaClip2Config(
        text_config=dict(
            vocab_size=len(tokenizer), max_position_embeddings=CONTEXT,
            bos_token_id=0, pad_token_id=1, eos_token_id=2, **tower,
        ),
        vision_config=dict(image_size=32, patch_size=8, **tower),
        projection_dim=16,
        logit_scale_init_value=3.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = _perturbed(transformers.MetaClip2Model(config))
    model.save_pretrained(directory)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(directory)
    images = np.random.default_rng(2).normal(size=(len(CAPTIONS), 32, 32, 3)).astype("float32")
    ids = tokenizer(CAPTIONS, padding="max_length", max_length=CONTEXT, truncation=True)
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids["input_ids"]),
            pixel_values=torch.tensor(images.transpose(0, 3, 1, 2)),
        )
    expected = {
        "image": out.image_embeds.numpy(),
        "text": out.text_embeds.numpy(),
        "logits": out.logits_per_image.numpy(),
    }
    return {"directory": directory, "model": model, "images": images, "expected": expected}


@pytest.mark.backend("tensorflow", "jax", "torch")
def test_metaclip2_directory_matches_transformers_from_captions(reference):
    """Captions through keras-clip's tokenizer and model give transformers'
    embeddings and logits (its tokenizer and MetaClip2Model)."""
    model = keras_clip.CLIP.from_pretrained(reference["directory"])
    assert model.text_encoder.end_token_id == 2
    tokenizer = keras_clip.Tokenizer.from_pretrained(reference["directory"])
    assert tokenizer.context_length == CONTEXT  # the model's positions, not XLM-V's 512
    token_ids = tokenizer(CAPTIONS)
    assert token_ids.max() > 2 and (token_ids == 1).any()  # pieces past the end; padding
    _assert_match(_keras_outputs(model, reference["images"], token_ids), reference["expected"])


@pytest.mark.backend("torch")
def test_metaclip2_writes_back_bit_for_bit(reference, tmp_path):
    model = keras_clip.CLIP.from_pretrained(reference["directory"])
    model.save_pretrained(str(tmp_path / "out"), format="huggingface")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "metaclip_2" and config["architectures"] == ["MetaClip2Model"]
    text_ids = {k: config["text_config"][k] for k in ("bos_token_id", "pad_token_id")}
    assert text_ids == {"bos_token_id": 0, "pad_token_id": 1}
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path / "out"))
    assert type(reloaded).__name__ == "MetaClip2Model"
    written = read_safetensors(str(tmp_path / "out" / "model.safetensors"))
    state = reference["model"].state_dict()
    assert sorted(written) == sorted(name for name in state if "position_ids" not in name)
    for name, value in written.items():
        np.testing.assert_array_equal(value, state[name].numpy(), err_msg=name)


@pytest.mark.backend("torch")
def test_an_open_clip_worldwide_model_becomes_a_metaclip2_model(reference, tmp_path):
    """open_clip's worldwide towers (ViT-H-14-worldwide, shrunken) load and
    save as a MetaClip2Model that gives open_clip's embeddings; a CLIPModel
    would pool at the largest id instead."""
    open_clip_config = {
        "embed_dim": 16,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2,
                       "head_width": 32},
        "text_cfg": {"context_length": CONTEXT, "vocab_size": 120, "width": 64, "heads": 2,
                     "layers": 2, "eos_id": 2, "pool_type": "eos",
                     "hf_tokenizer_name": "facebook/xlm-v-base"},
    }  # fmt: skip
    directory = tmp_path / "worldwide"
    directory.mkdir()
    oc_model = random_open_clip_model(open_clip_config, directory / "open_clip_model.safetensors")
    with open(directory / "open_clip_config.json", "w") as f:
        json.dump({"model_cfg": open_clip_config}, f)
    model = keras_clip.CLIP.from_pretrained(str(directory))
    model.save_pretrained(str(tmp_path / "hf"), format="huggingface")
    converted = transformers.MetaClip2Model.from_pretrained(str(tmp_path / "hf")).eval()
    images = reference["images"]
    token_ids = np.full((3, CONTEXT), 1, "int64")
    token_ids[:, 0] = 0
    token_ids[0, 1:4], token_ids[0, 4] = [50, 119, 7], 2
    token_ids[1, 1:9], token_ids[1, 9] = np.arange(110, 118), 2
    token_ids[2, 1], token_ids[2, 2] = 2, 2
    with torch.no_grad():
        pixels = torch.tensor(images[:3].transpose(0, 3, 1, 2))
        ids = torch.tensor(token_ids)
        image, text, _ = oc_model(pixels, ids)
        out = converted(input_ids=ids, pixel_values=pixels)
    np.testing.assert_allclose(out.image_embeds.numpy(), image.numpy(), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(out.text_embeds.numpy(), text.numpy(), atol=TOLERANCE, rtol=0)


@pytest.mark.backend("tensorflow")
def test_a_metaclip2_model_fine_tunes_and_serves_captions(reference, tmp_path):
    """fit lowers the loss; zero-shot classifies with XLM-V prompts; the
    SavedModel tokenizes captions with XLM-V in the graph and gives the
    Keras model's text embeddings."""
    import keras
    import tensorflow as tf

    from keras_clip.export import export_saved_model

    model = keras_clip.CLIP.from_pretrained(reference["directory"])
    tokenizer = keras_clip.Tokenizer.from_pretrained(reference["directory"])
    rng = np.random.default_rng(3)
    data = {
        "images": rng.normal(size=(10, 32, 32, 3)).astype("float32"),
        "token_ids": tokenizer(CAPTIONS * 2),
    }
    data["token_ids"][5:, 1] += 3  # ten distinct captions
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    losses = model.fit(data, batch_size=10, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    # Zero-shot with a one-template prompt: the softmax of the scaled cosines.
    classes = ["chat", "Katze", "猫"]
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, classes, templates=["{}"])
    image = to_numpy(model.encode_image(data["images"]))
    text = to_numpy(model.encode_text(tokenizer(classes)))
    logits = float(to_numpy(model.logit_scale)) * image @ text.T
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(classifier.predict(data["images"]), expected, atol=1e-5)
    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    text = served.signatures["encode_text"](texts=tf.constant(CAPTIONS))
    expected = to_numpy(model.encode_text(tokenizer(CAPTIONS)))
    np.testing.assert_allclose(next(iter(text.values())).numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.backend("tensorflow")
def test_metaclip2_configs_are_read_as_transformers_fills_them(reference):
    """eos_token_id absent: MetaClip2TextConfig's default (49407), pooled at
    its first occurrence; a CLIPModel's legacy 2 still means the largest id."""
    from keras_clip.pretrained import configs

    config = json.loads(open(os.path.join(reference["directory"], "config.json")).read())
    assert configs.from_huggingface_config(config)["end_token_id"] == 2
    del config["text_config"]["eos_token_id"]
    assert configs.from_huggingface_config(config)["end_token_id"] == 49407
    config.update(model_type="clip")
    config["text_config"]["eos_token_id"] = 2
    assert configs.from_huggingface_config(config)["end_token_id"] is None
    config.update(model_type="align")
    with pytest.raises(ValueError, match="'align' model, not a CLIPModel or MetaClip2Model"):
        configs.from_huggingface_config(config)
