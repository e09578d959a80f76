"""SigLIP 2's Gemma tokenizer: ids equal to transformers' `GemmaTokenizer` and
`Siglip2Tokenizer` (from `tokenizer.model`, and from the `tokenizer.json`
alone that transformers 5 saves) and to open_clip's `HFTokenizer`.

The SentencePiece model is trained here with Gemma's settings: BPE, byte
fallback, identity normalisation, no dummy prefix, digits split, pad/eos/
bos/unk at ids 0-3, user-defined pieces.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from tests.helpers import import_open_clip
from tests.test_siglip import TRICKY

# tensorflow-text graph code, the same on every Keras backend: one lane.
pytestmark = pytest.mark.backend("tensorflow")
transformers = pytest.importorskip("transformers")

CONTEXT = 16
GEMMA_TRICKY = TRICKY + [
    "PHOTO of The Cat",
    "2024 in 3.5s",
    "[multimodal] then text",
    "a\t\t\tb",
    "x<eos>y",
    "<pad><bos><unk>",
    "<mask><mask>",
    "<eos>",
    "under_score and_more",
    "née ÉCOLE",
]
# transformers' Lowercase (Rust's to_lowercase) has no final sigma: "ΣΑΣ"
# -> "σασ"; Python, TensorFlow and big_vision give "σας", and so do we.
FINAL_SIGMA = "ΣΑΣ"
VARIANTS = [
    ("GemmaTokenizer", {}),
    ("GemmaTokenizer", {"add_bos_token": True, "add_eos_token": True, "padding_side": "right"}),
    ("Siglip2Tokenizer", {"add_bos_token": False, "add_eos_token": True, "padding_side": "right"}),
    ("Siglip2Tokenizer", {"add_bos_token": True, "add_eos_token": False, "padding_side": "left"}),
]


def train_gemma_model(directory):
    """A SentencePiece model with Gemma's settings, trained here; its path."""
    spm = pytest.importorskip("sentencepiece")
    rng = np.random.default_rng(0)
    words = "a photo of the red blue circle square cat dog café naïve Photo The DOG 2024 3.5"
    sentences = [" ".join(rng.choice(words.split(), size=rng.integers(3, 9))) for _ in range(3000)]
    prefix = os.path.join(directory, "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=prefix, vocab_size=360, model_type="bpe",
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", byte_fallback=True, user_defined_symbols=["<mask>", "[multimodal]", "\t\t"],
        normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        character_coverage=1.0, num_threads=1, minloglevel=2,
    )  # fmt: skip
    return prefix + ".model"


@pytest.fixture(scope="module")
def gemma_model(tmp_path_factory):
    return train_gemma_model(str(tmp_path_factory.mktemp("gemma")))


def _checkpoint(directory, model_path, tokenizer_class, settings):
    """A directory as a SigLIP 2 checkpoint keeps its tokenizer: Gemma's
    tokenizer.model and tokenizer_config.json."""
    os.makedirs(directory, exist_ok=True)
    shutil.copy(model_path, os.path.join(directory, "tokenizer.model"))
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": tokenizer_class, **settings}, f)
    return directory


def _assert_same_ids(tokenizer, reference, texts):
    expected = reference(texts, padding="max_length", max_length=CONTEXT, truncation=True)
    found = tokenizer(texts)
    for text, row, want in zip(texts, found, expected["input_ids"]):
        assert row.tolist() == want, text[:40]


@pytest.mark.parametrize("tokenizer_class, settings", VARIANTS)
def test_gemma_ids_equal_transformers(gemma_model, tokenizer_class, settings, tmp_path):
    directory = _checkpoint(str(tmp_path / "model"), gemma_model, tokenizer_class, settings)
    reference = transformers.AutoTokenizer.from_pretrained(directory)
    assert type(reference).__name__ == tokenizer_class
    # transformers 5 saves tokenizer.json alone: its BPE becomes a SentencePiece model.
    reference.save_pretrained(str(tmp_path / "saved"))
    assert sorted(os.listdir(tmp_path / "saved")) == ["tokenizer.json", "tokenizer_config.json"]
    for path in (directory, str(tmp_path / "saved")):
        tokenizer = keras_clip.Tokenizer.from_pretrained(path, context_length=CONTEXT)
        assert tokenizer.padding_side == reference.padding_side
        _assert_same_ids(tokenizer, reference, GEMMA_TRICKY)
        lower = tokenizer_class == "Siglip2Tokenizer"
        assert tokenizer.detokenize(tokenizer([FINAL_SIGMA]))[0] == (
            FINAL_SIGMA.lower() if lower else FINAL_SIGMA
        )
        _, truncated = tokenizer.tokenize_and_count(GEMMA_TRICKY)
        full = reference(GEMMA_TRICKY)["input_ids"]
        assert truncated.numpy().tolist() == [len(ids) > CONTEXT for ids in full]


def test_gemma_framing_runs_in_graph_and_survives_save(gemma_model, tmp_path):
    settings = {"add_bos_token": True, "add_eos_token": True, "padding_side": "left"}
    directory = _checkpoint(str(tmp_path / "model"), gemma_model, "GemmaTokenizer", settings)
    tokenizer = keras_clip.Tokenizer.from_pretrained(directory, context_length=CONTEXT)
    assert (tokenizer.start_id, tokenizer.end_id, tokenizer.pad_id) == (2, 1, 0)
    expected = tokenizer(GEMMA_TRICKY)
    row = expected[0].tolist()  # "a photo of a cat.": padding, start, pieces, end
    first = next(i for i, token in enumerate(row) if token != 0)
    assert first > 0 and row[first] == 2 and row[-1] == 1
    graph = tf.function(lambda texts: tokenizer.tokenize(texts))
    np.testing.assert_array_equal(graph(tf.constant(GEMMA_TRICKY)).numpy(), expected)
    tokenizer.save(str(tmp_path / "saved"))
    again = keras_clip.Tokenizer.load(str(tmp_path / "saved"))
    assert again.special_pieces == tokenizer.special_pieces and "<eos>" in again.special_pieces
    np.testing.assert_array_equal(again(GEMMA_TRICKY), expected)


def _open_clip_checkpoint(directory, text_cfg):
    with open(os.path.join(directory, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": {"text_cfg": text_cfg}}, f)
    return directory


@pytest.mark.parametrize("family", ["siglip", "siglip2"])
def test_open_clip_hf_tokenizer_ids(gemma_model, family, tmp_path):
    """open_clip's SigLIP tokenizers: `HFTokenizer(clean="canonicalize")`
    (ftfy, HTML entities, "_" to spaces, punctuation, lower case) over the
    checkpoint's Hugging Face tokenizer; `python_clean=True` adds the ftfy
    and HTML part, the rest is in the graph."""
    open_clip = import_open_clip()
    directory = str(tmp_path / family)
    if family == "siglip":
        from tests.test_siglip import _sentencepiece_directory

        _sentencepiece_directory(directory)
    else:
        settings = {"add_bos_token": False, "add_eos_token": True, "padding_side": "right"}
        _checkpoint(directory, gemma_model, "Siglip2Tokenizer", settings)
    text_cfg = {"context_length": CONTEXT, "tokenizer_kwargs": {"clean": "canonicalize"}}
    _open_clip_checkpoint(directory, text_cfg)
    reference = open_clip.tokenizer.HFTokenizer(directory, CONTEXT, clean="canonicalize")
    tokenizer = keras_clip.Tokenizer.from_pretrained(directory, python_clean=True)
    assert tokenizer.context_length == CONTEXT
    assert tokenizer.cleaning[0] == "underscores"
    texts = GEMMA_TRICKY + [FINAL_SIGMA, "donâ€™t &amp;amp; ﬁne"]
    np.testing.assert_array_equal(tokenizer(texts), reference(texts).numpy())


def test_unknown_tokenizer_class_is_named(gemma_model, tmp_path):
    directory = _checkpoint(str(tmp_path / "model"), gemma_model, "LlamaTokenizer", {})
    with pytest.raises(ValueError, match="tokenizer_class 'LlamaTokenizer'"):
        keras_clip.Tokenizer.from_pretrained(directory)
    os.remove(os.path.join(directory, "tokenizer.model"))
    with open(os.path.join(directory, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "Unigram", "vocab": []}}, f)
    with pytest.raises(ValueError, match="tokenizer_class 'LlamaTokenizer'"):
        keras_clip.Tokenizer.from_pretrained(directory)
    with open(os.path.join(directory, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "WordLevel", "vocab": {}}}, f)
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        keras_clip.Tokenizer.from_pretrained(directory)
