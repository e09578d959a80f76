"""MetaCLIP 2's tokenizers, SentencePiece Unigram models: XLM-V
(transformers' `XLMRobertaTokenizer`) and mT5 (`T5Tokenizer`). Ids equal to
transformers' from the shipped model file and from the `tokenizer.json`
alone that transformers 5 saves, and to open_clip's `HFTokenizer` over them.

The SentencePiece model is trained here with fairseq's settings (a Unigram
model, `<unk>`, `<s>`, `</s>` at 0-2, NFKC normalisation), so its ids are
not transformers': fairseq's dictionary reorders them.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.tokenizers.unigram_proto import fairseq_ordered_model
from keras_clip.tokenizers.unigram_proto import unigram_model_from_tokenizer_json
from tests.helpers import import_open_clip
from tests.test_gemma_tokenizer import GEMMA_TRICKY

# tensorflow-text graph code, the same on every Keras backend: one lane.
pytestmark = pytest.mark.backend("tensorflow")
transformers = pytest.importorskip("transformers")

CONTEXT = 16
WORDS = (
    "a photo of the red blue circle square cat dog café naïve Photo The DOG 2024 3.5 une "
    "d'un chat ein Foto einer Katze 猫 の 写真 фотография кошки una foto de un gato صورة قطة "
    "고양이 사진 diagram digit seven quick brown fox"
).split()
XLM_TRICKY = GEMMA_TRICKY + [
    "猫の写真 zzz Ω 😀😀 x",  # unknown characters, in a run
    "  leading and  trailing  ",
    "Ａｎ ｅｘａｍｐｌｅ",  # NFKC: full-width letters
    "a <mask> b",
    "<s>x</s>",
    "cafe\u0301 e\u0301cole",  # combining accents, composed by NFKC
    "tab\tnew\nline\u3000ideographic space",
    "صورة قطة and 고양이 사진 and фотография кошки",
]


def train_fairseq_model(directory, model_type="unigram", vocab_size=400):
    """A SentencePiece model as fairseq trains them (Unigram: XLM-R's; BPE:
    NLLB's), saved under their file name; its path."""
    spm = pytest.importorskip("sentencepiece")
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(3000)]
    prefix = os.path.join(directory, "sentencepiece.bpe")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=prefix, vocab_size=vocab_size,
        hard_vocab_limit=False, model_type=model_type, character_coverage=1.0,
        num_threads=1, minloglevel=2,
    )  # fmt: skip
    os.remove(prefix + ".vocab")
    return prefix + ".model"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The tokenizer as a checkpoint ships it (sentencepiece.bpe.model and
    tokenizer_config.json) and as transformers 5 saves it (tokenizer.json)."""
    root = tmp_path_factory.mktemp("xlm")
    shipped = str(root / "shipped")
    os.makedirs(shipped)
    train_fairseq_model(shipped)
    with open(os.path.join(shipped, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}, f)
    reference = transformers.AutoTokenizer.from_pretrained(shipped)
    assert type(reference).__name__ == "XLMRobertaTokenizer"
    saved = str(root / "saved")
    reference.save_pretrained(saved)
    assert sorted(os.listdir(saved)) == ["tokenizer.json", "tokenizer_config.json"]
    return {"shipped": shipped, "saved": saved, "reference": reference}


def _assert_same_ids(tokenizer, reference, texts, context=CONTEXT):
    expected = reference(texts, padding="max_length", max_length=context, truncation=True)
    found = tokenizer(texts)
    for text, row, want in zip(texts, found, expected["input_ids"]):
        assert row.tolist() == want, text[:40]


@pytest.mark.parametrize("form", ["shipped", "saved"])
def test_xlm_roberta_ids_equal_transformers(checkpoints, form):
    reference = checkpoints["reference"]
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoints[form], context_length=CONTEXT)
    assert (tokenizer.start_id, tokenizer.pad_id, tokenizer.end_id) == (0, 1, 2)
    assert tokenizer.vocabulary_size == len(reference)
    assert tokenizer.vocabulary[3] == "<unk>" and tokenizer.vocabulary[-1] == "<mask>"
    _assert_same_ids(tokenizer, reference, XLM_TRICKY)
    long = [" ".join(WORDS[: 3 + i]) for i in range(0, 30, 3)]
    _assert_same_ids(tokenizer, reference, long)
    _, truncated = tokenizer.tokenize_and_count(XLM_TRICKY + long)
    full = reference(XLM_TRICKY + long)["input_ids"]
    assert truncated.numpy().tolist() == [len(ids) > CONTEXT for ids in full]
    assert any(truncated.numpy())


def test_both_forms_make_the_same_model(checkpoints):
    """sentencepiece.bpe.model reordered and tokenizer.json converted: one
    model, piece for piece and score for score."""
    with open(os.path.join(checkpoints["shipped"], "sentencepiece.bpe.model"), "rb") as f:
        reordered = fairseq_ordered_model(f.read())
    with open(os.path.join(checkpoints["saved"], "tokenizer.json"), encoding="utf-8") as f:
        converted = unigram_model_from_tokenizer_json(json.load(f))
    shipped = keras_clip.tokenizers.SentencePieceTokenizer(reordered, cleaning=())
    saved = keras_clip.tokenizers.SentencePieceTokenizer(converted, cleaning=())
    assert shipped.vocabulary == saved.vocabulary
    assert shipped.vocabulary[:4] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_context_length_is_the_models_positions(checkpoints, tmp_path):
    """XLM-V's tokenizer allows 512 tokens; a MetaCLIP 2 checkpoint's text
    tower has 77 positions, and its tokenizer stops there."""
    directory = str(tmp_path / "metaclip2")
    shutil.copytree(checkpoints["shipped"], directory)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"model_type": "metaclip_2", "text_config": {"max_position_embeddings": 77}}, f)
    assert keras_clip.Tokenizer.from_pretrained(directory).context_length == 77
    assert keras_clip.Tokenizer.from_pretrained(checkpoints["shipped"]).context_length == 512


def test_runs_in_graph_and_survives_save(checkpoints, tmp_path):
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoints["saved"], context_length=CONTEXT)
    expected = tokenizer(XLM_TRICKY)
    graph = tf.function(lambda texts: tokenizer.tokenize(texts))
    np.testing.assert_array_equal(graph(tf.constant(XLM_TRICKY)).numpy(), expected)
    tokenizer.save(str(tmp_path / "saved"))
    again = keras_clip.Tokenizer.load(str(tmp_path / "saved"))
    assert "<mask>" in again.special_pieces
    np.testing.assert_array_equal(again(XLM_TRICKY), expected)
    assert again.detokenize(again(["une photo d'un chat"]))[0] == "une photo d'un chat"


def test_open_clip_hf_tokenizer_ids(checkpoints, tmp_path):
    """open_clip's worldwide configs: `HFTokenizer("facebook/xlm-v-base")`
    with its default whitespace clean-up (and ftfy, `python_clean=True`)."""
    open_clip = import_open_clip()
    directory = str(tmp_path / "open_clip")
    shutil.copytree(checkpoints["shipped"], directory)
    text_cfg = {"context_length": CONTEXT, "hf_tokenizer_name": "facebook/xlm-v-base"}
    with open(os.path.join(directory, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": {"text_cfg": text_cfg}}, f)
    reference = open_clip.tokenizer.HFTokenizer(directory, context_length=CONTEXT)
    tokenizer = keras_clip.Tokenizer.from_pretrained(directory, python_clean=True)
    assert tokenizer.cleaning == ["whitespace"]
    texts = XLM_TRICKY + ["x&amp;y", "\u00c3\u00a9t\u00c3\u00a9 mojibake"]
    np.testing.assert_array_equal(tokenizer(texts), reference(texts).numpy())


def test_unsupported_files_are_named(checkpoints, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    prefix = str(tmp_path / "other")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(WORDS * 20), model_prefix=prefix, vocab_size=100,
        hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=2, eos_id=3, minloglevel=2,
    )  # fmt: skip
    with open(prefix + ".model", "rb") as f:
        with pytest.raises(ValueError, match="does not start with <unk>, <s>, </s>"):
            fairseq_ordered_model(f.read())
    with open(os.path.join(checkpoints["saved"], "tokenizer.json"), encoding="utf-8") as f:
        tokenizer_json = json.load(f)
    tokenizer_json["normalizer"] = {"type": "Lowercase"}
    with pytest.raises(ValueError, match="normalizer step .*Lowercase.* not supported"):
        unigram_model_from_tokenizer_json(tokenizer_json)
    tokenizer_json["model"]["type"] = "WordLevel"
    with pytest.raises(ValueError, match="Only a Unigram tokenizer.json"):
        unigram_model_from_tokenizer_json(tokenizer_json)


# === T5 / mT5 (MetaCLIP 2's ViT-L-14 worldwide tokenizer) ===


def train_t5_model(directory):
    """A Unigram SentencePiece model with T5's ids (pad 0, end 1, unk 2, no
    start), saved as `spiece.model` with a T5Tokenizer config; `directory`."""
    spm = pytest.importorskip("sentencepiece")
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(3000)]
    prefix = os.path.join(directory, "spiece")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=prefix, vocab_size=400,
        hard_vocab_limit=False, model_type="unigram", character_coverage=1.0, pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, num_threads=1, minloglevel=2,
    )  # fmt: skip
    os.remove(prefix + ".vocab")
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "T5Tokenizer", "model_max_length": 512}, f)
    return directory


T5_TRICKY = XLM_TRICKY + ["a photo of a cat <extra_id_0> x", "<extra_id_99><pad></s>", "x<unk>y"]


def test_t5_ids_equal_transformers(tmp_path):
    """mT5's tokenizer: spiece.model's own ids, "</s>" at the end, "<pad>"
    after, and the 100 sentinels transformers appends (matched in text)."""
    shipped = train_t5_model(str(tmp_path / "t5"))
    reference = transformers.AutoTokenizer.from_pretrained(shipped)
    assert type(reference).__name__ == "T5Tokenizer"
    reference.save_pretrained(str(tmp_path / "saved"))
    for path in (shipped, str(tmp_path / "saved")):
        tokenizer = keras_clip.Tokenizer.from_pretrained(path, context_length=CONTEXT)
        assert (tokenizer.start_id, tokenizer.pad_id, tokenizer.end_id) == (None, 0, 1)
        assert tokenizer.vocabulary_size == len(reference)
        assert tokenizer.vocabulary[-1] == "<extra_id_0>"
        _assert_same_ids(tokenizer, reference, T5_TRICKY)


def test_open_clip_mt5_tokenizer_ids(tmp_path):
    """open_clip's ViT-L-14-worldwide: `HFTokenizer("google/mt5-base",
    clean="canonicalize")` over the same files."""
    open_clip = import_open_clip()
    directory = train_t5_model(str(tmp_path / "open_clip"))
    text_cfg = {
        "context_length": CONTEXT,
        "hf_tokenizer_name": "google/mt5-base",
        "tokenizer_kwargs": {"clean": "canonicalize"},
    }
    with open(os.path.join(directory, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": {"text_cfg": text_cfg}}, f)
    reference = open_clip.tokenizer.HFTokenizer(
        directory, context_length=CONTEXT, clean="canonicalize"
    )
    tokenizer = keras_clip.Tokenizer.from_pretrained(directory, python_clean=True)
    texts = XLM_TRICKY + ["x&amp;y", "PHOTO_of the Cat!"]
    np.testing.assert_array_equal(tokenizer(texts), reference(texts).numpy())
