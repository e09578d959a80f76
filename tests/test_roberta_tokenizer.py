"""RoBERTa's tokenizer (open_clip's `roberta-ViT-B-32`): GPT-2's byte-level
BPE on keras-hub's `BytePairTokenizer` with RoBERTa's framing
(keras_clip.tokenizers.byte_level_bpe). Ids equal to transformers'
`RobertaTokenizer` and open_clip's `HFTokenizer`, for a byte-level BPE
trained here with Hugging Face's `tokenizers`."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from tests.helpers import import_open_clip
from tests.test_gemma_tokenizer import GEMMA_TRICKY
from tests.test_unigram_tokenizers import CONTEXT
from tests.test_unigram_tokenizers import WORDS
from tests.test_unigram_tokenizers import _assert_same_ids

# tensorflow-text graph code, the same on every Keras backend: one lane.
pytestmark = pytest.mark.backend("tensorflow")
transformers = pytest.importorskip("transformers")

TRICKY = GEMMA_TRICKY + [
    "Hello   World!!  it's 3.14, don't",
    "日本語 😀 naïve café ÀÉÎ",
    "a <mask> b <s>x</s>",
    "tab\tnew\nline",
    "x" * 300,
    "",
]


def roberta_checkpoint(directory):
    """A byte-level BPE trained on the test words, saved as a Hugging Face
    RoBERTa tokenizer (vocab.json, merges.txt, tokenizer_config.json)."""
    tokenizers = pytest.importorskip("tokenizers")
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(3000)]
    trainer = tokenizers.ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer.train_from_iterator(sentences, vocab_size=600, special_tokens=specials)
    os.makedirs(directory, exist_ok=True)
    trainer.save_model(directory)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "RobertaTokenizer", "model_max_length": 512}, f)
    return transformers.AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("roberta") / "roberta")
    return directory, roberta_checkpoint(directory)


def test_roberta_ids_equal_transformers(checkpoint):
    directory, reference = checkpoint
    assert type(reference).__name__ == "RobertaTokenizer"
    tokenizer = keras_clip.Tokenizer.from_pretrained(directory, context_length=CONTEXT)
    assert type(tokenizer).__name__ == "ByteLevelBPETokenizer"
    assert (tokenizer.start_id, tokenizer.pad_id, tokenizer.end_id) == (0, 1, 2)
    assert tokenizer.vocabulary_size == len(reference)
    rng = np.random.default_rng(3)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(1, 14))) for _ in range(200)]
    _assert_same_ids(tokenizer, reference, TRICKY + sentences)
    _, truncated = tokenizer.tokenize_and_count(sentences)
    assert truncated.numpy().tolist() == [
        len(ids) > CONTEXT for ids in reference(sentences)["input_ids"]
    ]
    assert any(truncated.numpy())
    assert keras_clip.Tokenizer.from_pretrained(directory).context_length == 512


def test_runs_in_graph_and_survives_save(checkpoint, tmp_path):
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoint[0], context_length=CONTEXT)
    expected = tokenizer(TRICKY)
    graph = tf.function(lambda texts: tokenizer.tokenize(texts))
    np.testing.assert_array_equal(graph(tf.constant(TRICKY)).numpy(), expected)
    tokenizer.save(str(tmp_path / "saved"))
    again = keras_clip.Tokenizer.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again(TRICKY), expected)
    assert again.detokenize(again(["une photo d'un chat"]))[0] == "une photo d'un chat"


def test_open_clip_hf_tokenizer_ids(checkpoint, tmp_path):
    """open_clip's `roberta-ViT-B-32`: `HFTokenizer` with its clean-up (ftfy
    and HTML entities: `python_clean=True`; whitespace) and 77 tokens."""
    open_clip = import_open_clip()
    directory = tmp_path / "open_clip"
    shutil.copytree(checkpoint[0], directory)
    text_cfg = {"hf_tokenizer_name": "roberta-base"}
    (directory / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": {"text_cfg": text_cfg}})
    )
    reference = open_clip.tokenizer.HFTokenizer(str(directory), context_length=77)
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(directory), python_clean=True)
    assert tokenizer.context_length == 77 and tokenizer.clean_whitespace
    texts = TRICKY + ["  leading and  trailing  "]
    np.testing.assert_array_equal(tokenizer(texts), reference(texts).numpy())
