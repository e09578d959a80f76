"""A checkpoint's own tokenizer files: Hugging Face, OpenAI, keras-clip."""

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from tests.test_clip_bpe import MERGES
from tests.test_clip_bpe import TRICKY

# The tokenizer is tensorflow-text graph code, the same whatever the Keras
# backend: it is tested once, in the TensorFlow run of the suite.
pytestmark = pytest.mark.backend("tensorflow")


def _huggingface_directory(tmp_path):
    merges_path = tmp_path / "merges.txt"
    merges_path.write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")
    built = keras_clip.Tokenizer.from_clip_bpe(str(merges_path)).vocabulary
    (tmp_path / "vocab.json").write_text(
        json.dumps({token: i for i, token in enumerate(built)}), encoding="utf-8"
    )
    return tmp_path


def test_huggingface_files_give_keras_hub_ids(tmp_path):
    import keras_hub

    folder = _huggingface_directory(tmp_path)
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(folder))
    reference = keras_hub.models.CLIPTokenizer(
        vocabulary=str(folder / "vocab.json"), merges=str(folder / "merges.txt")
    )
    ids = tokenizer.tokenize(tf.constant(TRICKY)).numpy()  # truncated to 77
    for text, row in zip(TRICKY, ids):
        expected = [int(i) for i in np.asarray(reference(text))][:75]
        framed = [tokenizer.start_id] + expected + [tokenizer.end_id]
        assert list(row[: len(framed)]) == framed, text[:40]


def test_huggingface_files_give_transformers_ids(tmp_path):
    """The same files through transformers' own CLIPTokenizer (the
    reference of Hugging Face checkpoints): identical ids, framing included."""
    transformers = pytest.importorskip("transformers")
    folder = _huggingface_directory(tmp_path)
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(folder))
    reference = transformers.CLIPTokenizer.from_pretrained(str(folder))
    ids = tokenizer.tokenize(tf.constant(TRICKY)).numpy()
    for text, row in zip(TRICKY, ids):
        expected = reference(text, truncation=True, max_length=77)["input_ids"]
        assert list(row[: len(expected)]) == expected, text[:40]
        assert not row[len(expected) :].any()  # then padding


def test_openai_file_and_saved_directory(tmp_path):
    path = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    from_file = keras_clip.Tokenizer.from_pretrained(str(path))
    from_folder = keras_clip.Tokenizer.from_pretrained(str(tmp_path))
    from_file.save(str(tmp_path / "saved"))
    saved = keras_clip.Tokenizer.from_pretrained(str(tmp_path / "saved"))
    texts = ["a photo of the red circle.", "café 🐱"]
    np.testing.assert_array_equal(from_file(texts), from_folder(texts))
    np.testing.assert_array_equal(from_file(texts), saved(texts))


def test_mismatched_vocabulary_names_the_token(tmp_path):
    folder = _huggingface_directory(tmp_path)
    vocabulary = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    vocabulary["the</w>"], vocabulary["of</w>"] = (vocabulary["of</w>"], vocabulary["the</w>"])
    (folder / "vocab.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    with pytest.raises(ValueError, match="token 'the</w>' has id"):
        keras_clip.Tokenizer.from_pretrained(str(folder))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        keras_clip.Tokenizer.from_pretrained(str(tmp_path / "empty"))
