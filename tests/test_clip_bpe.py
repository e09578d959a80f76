"""CLIP's byte-level BPE tokenizer against keras-hub's CLIPTokenizer."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.tokenizers import ClipBPETokenizer

# The tokenizer is tensorflow-text graph code, the same whatever the Keras
# backend: it is tested once, in the TensorFlow run of the suite.
pytestmark = pytest.mark.backend("tensorflow")

# Learned in order: every rule's symbols exist before it (as in real BPE).
MERGES = [
    "t h",
    "th e</w>",
    "p h",
    "ph o",
    "pho t",
    "phot o</w>",
    "o f</w>",
    "c a",
    "ca t</w>",
    "d o",
    "do g</w>",
    "i n",
    "in g</w>",
    "a a",
    "aa a",
    ". .",
    ".. .",
    "! !",
    "r e",
    "re d</w>",
    "c i",
    "ci r",
    "cir c",
    "circ l",
    "circl e</w>",
    "Ã ©</w>",
    "Ã ©",
    "a f",
    "c af",
    "caf Ã©</w>",
]
TRICKY = [
    "a photo of the cat.",
    "A  PHOTO\tof a dog!!",
    "",
    "   ",
    "café naïve 123",
    "emoji 🐱🐶 ok 👍🏽",
    "it's don't we'LL",
    "<|endoftext|> x <|startoftext|>",
    "aaaaa ...... !!!!! ?!?",
    "ÉCOLE Ünïcödé Ωμέγα 東京",
    "tab\u00a0nbsp\u3000wide",
    "3.14159, 2,718; 1e-10",
    "e\u0301 combining",
    "red circle " * 3,
    " ".join(["The", "cat's", "photo,", "café", "12", "🐱", "circle."][i % 7] for i in range(1000)),
]


@pytest.fixture(scope="module")
def merges_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "bpe_small.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return str(path)


def test_same_ids_as_keras_hub_clip_tokenizer(merges_path):
    import keras_hub

    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path, context_length=4096)
    vocabulary = {token: i for i, token in enumerate(tokenizer.vocabulary)}
    reference = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=MERGES)
    ours = tokenizer.tokenize(tf.constant(TRICKY)).numpy()
    for text, row in zip(TRICKY, ours):
        expected = [int(i) for i in np.asarray(reference(text))]
        framed = [tokenizer.start_id] + expected + [tokenizer.end_id]
        framed += [0] * (4096 - len(framed))
        assert list(row) == framed, text[:40]
    assert 2000 < len(expected) < 4094  # the 1,000-word string, untruncated


def test_keras_hub_tokenizer_differs_in_graph_mode_ours_does_not(merges_path):
    """Why keras-clip keeps its own BPE: keras-hub's CLIPTokenizer runs in
    tf.data and a SavedModel, but there (graph mode) it neither lower-cases
    nor splits digits as it does eagerly, so a served model would see other
    ids than the one in the notebook. Ours gives the same ids both ways.
    (If the first assertion fails, keras-hub fixed it: reconsider.)"""
    import keras_hub

    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path, context_length=32)
    vocabulary = {token: i for i, token in enumerate(tokenizer.vocabulary)}
    reference = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=MERGES)
    texts = ["Hello World 123", "a photo of a cat."]
    eager = [list(np.asarray(reference(t))) for t in texts]
    graph = tf.data.Dataset.from_tensor_slices(texts).map(reference)
    in_graph = [list(np.asarray(ids)) for ids in graph]
    assert in_graph[0] != eager[0] and in_graph[1] == eager[1]
    ours_graph = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer.tokenize)
    np.testing.assert_array_equal(next(iter(ours_graph)).numpy(), tokenizer(texts))


def test_vocabulary_layout_and_truncation(merges_path):
    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path)
    assert isinstance(tokenizer, keras_clip.Tokenizer)
    assert tokenizer.vocabulary_size == 512 + len(MERGES) + 2
    assert tokenizer.vocabulary[:2] == ["!", '"'] and tokenizer.vocabulary[256] == "!</w>"
    assert tokenizer.end_id == tokenizer.vocabulary_size - 1  # pooled at the largest id
    ids = tokenizer(["a photo of the red circle", "red circle " * 100])
    assert ids.shape == (2, 77) and ids.dtype == np.int32
    assert list(ids[0, :7]) == [tokenizer.start_id] + [
        tokenizer.vocabulary.index(t)
        for t in ("a</w>", "photo</w>", "of</w>", "the</w>", "red</w>", "circle</w>")
    ]
    assert ids[1, -1] == tokenizer.end_id and 0 not in ids[1]
    assert tokenizer.detokenize(ids[:1]) == ["a photo of the red circle"]


def test_runs_in_tf_data_and_saved_model_and_round_trips(merges_path, tmp_path):
    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path, context_length=16)
    texts = ["a photo of the cat.", "café 🐱", "red circle"]
    eager = tokenizer(texts)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer.tokenize)
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())), eager)

    module = tf.Module()
    module.resources = tokenizer.tf_resources()
    module.encode = tf.function(
        tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(served.encode(tf.constant(texts)).numpy(), eager)

    tokenizer.save(str(tmp_path / "tok"))
    loaded = keras_clip.Tokenizer.load(str(tmp_path / "tok"))
    assert isinstance(loaded, ClipBPETokenizer) and loaded.merges == tokenizer.merges
    np.testing.assert_array_equal(loaded(texts), eager)


def test_openai_files_first_line_is_skipped(merges_path, tmp_path):
    """OpenAI's and open_clip's bpe_simple_vocab_16e6.txt.gz starts with
    '"bpe_simple_vocab_16e6.txt#version: 0.2', not "#version: 0.2"."""
    shipped = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(shipped, "wt", encoding="utf-8") as f:
        f.write('"bpe_simple_vocab_16e6.txt#version: 0.2\n' + "\n".join(MERGES) + "\n")
    ours = keras_clip.Tokenizer.from_clip_bpe(str(shipped))
    reference = keras_clip.Tokenizer.from_clip_bpe(merges_path)
    assert ours.merges == reference.merges
    texts = [text for text in TRICKY if text.strip()]
    np.testing.assert_array_equal(ours(texts), reference(texts))


def test_bad_merges_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("#version: 0.2\nt h\nthree symbols here\n")
    with pytest.raises(ValueError, match="line\\(s\\) \\[3\\]"):
        keras_clip.Tokenizer.from_clip_bpe(str(bad))
    with pytest.raises(ValueError, match="Merge rule 0 .*'th' 'e'"):
        ClipBPETokenizer([("th", "e")])
    with pytest.raises(ValueError, match="context_length"):
        ClipBPETokenizer([("t", "h")], context_length=2)


def test_empty_and_special_only_captions_frame_to_start_and_end(merges_path):
    """An empty caption is [sot, eot] (the data pipeline skips it as a bad
    example); a batch of only special tokens used to fail in tf.range."""
    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path, context_length=6)
    sot, eot = tokenizer.start_id, tokenizer.end_id
    ids = tokenizer(["", "  ", "<|endoftext|>", "<|startoftext|>"])
    assert ids.tolist() == [
        [sot, eot, 0, 0, 0, 0],
        [sot, eot, 0, 0, 0, 0],
        [sot, eot, eot, 0, 0, 0],
        [sot, sot, eot, 0, 0, 0],
    ]


def test_control_characters_go_as_ftfy_removes_them(merges_path):
    """OpenAI's and open_clip's clean-up starts with ftfy.fix_text, which
    deletes NUL and other invisible controls: "a\x00b" is "ab" (and the text
    after a NUL is not lost, as it was in tf.strings.lower)."""
    import ftfy

    tokenizer = keras_clip.Tokenizer.from_clip_bpe(merges_path, context_length=16)
    texts = [
        "a\x00b the cat",
        "x\x1fy\x0bz photo",
        "\ufeffthe\u206adog\x7f",
        "red\x08 circle\x00",
        "tab\tand\nnewline stay spaces",
    ]
    cleaned = [ftfy.fix_text(text) for text in texts]
    assert cleaned[0] == "ab the cat"
    np.testing.assert_array_equal(tokenizer(texts), tokenizer(cleaned))


# Tricky captions for open_clip's SimpleTokenizer, with the BPE file it ships.
OPEN_CLIP_TRICKY = [
    "a photo of a cat.", "A Photo OF a CAT!!", "", "   ", "it's they're we've I'm you'll he'd",
    "don't", "naïve café", "Straße", "ﬁne ﬂour (ligatures)", "ＦＵＬＬ　ＷＩＤＴＨ ｔｅｘｔ １２３",
    "&amp; &lt;b&gt; &quot;q&quot; &#39;", "&amp;amp;", "mojibake: cafÃ©, donâ€™t",
    "â€œquotedâ€\x9d", "emoji 🐱🚲 ok", "中文字符 日本語 한국어", "tab\tnew\nline\r\nend", "a\x00b",
    "zero\u200bwidth", "nbsp\u00a0here", "12345 3.14 1,000", "UPPER lower MiXeD",
    "hyphen-ated and under_score", "e-mail: a.b@c.com http://x.y/z?q=1", "!!!???...",
    "'quoted' \"double\"", "x" * 300, "word " * 100, "Ångström ÅNGSTRÖM", "İstanbul ı",
    "ǅ titlecase", "ß ẞ", "Ω ohm Ω", "½ ¼ ² ³", "…ellipsis…", "«guillemets»", "a\u0301 combining",
    "COMBINING E\u0301", "\ufeffbom first", "soft\u00adhyphen",
]  # fmt: skip


@pytest.mark.backend("torch")  # TensorFlow ops on any backend: one lane
def test_same_ids_as_open_clip_simple_tokenizer_on_its_own_bpe_file():
    """With python_clean=True (ftfy and HTML unescape, as OpenAI's
    basic_clean), the ids equal open_clip's SimpleTokenizer's."""
    from tests.helpers import import_open_clip

    open_clip = import_open_clip()
    from open_clip.tokenizer import SimpleTokenizer

    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    reference = SimpleTokenizer(bpe)
    tokenizer = keras_clip.Tokenizer.from_pretrained(bpe, python_clean=True)
    assert len(OPEN_CLIP_TRICKY) >= 40
    np.testing.assert_array_equal(
        tokenizer(OPEN_CLIP_TRICKY), reference(OPEN_CLIP_TRICKY, context_length=77).numpy()
    )
    # Without the Python clean-up only ftfy's and html's repairs differ.
    plain = keras_clip.Tokenizer.from_pretrained(bpe)
    assert (plain(["ﬁne"]) != tokenizer(["ﬁne"])).any()
    # Where the references part: open_clip 3 names its specials
    # "<start_of_text>"/"<end_of_text>", so "<|endoftext|>" in a caption is
    # plain text there; OpenAI's, Hugging Face's and keras-hub's tokenizers
    # (and this one) map it to the end-of-text id.
    assert tokenizer(["<|endoftext|>"])[0, 1] == tokenizer.end_id
    assert reference(["<|endoftext|>"])[0, 1] != tokenizer.end_id


@pytest.mark.backend("torch")  # TensorFlow ops on any backend: one lane
def test_long_pieces_go_in_parts_and_ids_stay_open_clips_up_to_the_cap():
    """A piece longer than MAX_WORD_CHARACTERS is tokenised as consecutive
    pieces of that length (bounded time; benchmarks/long_captions.py); up to
    the cap, and past the context's length, the ids are open_clip's."""
    import random
    import string

    from keras_clip.tokenizers.clip_bpe import MAX_WORD_CHARACTERS
    from tests.helpers import import_open_clip

    open_clip = import_open_clip()
    from open_clip.tokenizer import SimpleTokenizer

    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    reference = SimpleTokenizer(bpe)
    tokenizer = keras_clip.Tokenizer.from_pretrained(bpe)
    rng = random.Random(0)
    at_the_cap = [
        "".join(rng.choices(string.ascii_lowercase, k=MAX_WORD_CHARACTERS)),
        "q" * MAX_WORD_CHARACTERS,
        " ".join(f"w{i}" for i in range(500)),  # 1,000 pieces, far past the context
        "a photo of " + "".join(rng.choices(string.ascii_letters, k=MAX_WORD_CHARACTERS)),
    ]
    np.testing.assert_array_equal(
        tokenizer(at_the_cap), reference(at_the_cap, context_length=77).numpy()
    )
    longer = "ab" * MAX_WORD_CHARACTERS  # one piece, twice the cap
    in_parts = f"{longer[:MAX_WORD_CHARACTERS]} {longer[MAX_WORD_CHARACTERS:]}"
    long_tokenizer = keras_clip.Tokenizer.from_pretrained(bpe, context_length=400)
    np.testing.assert_array_equal(long_tokenizer([longer]), long_tokenizer([in_parts]))
    assert (long_tokenizer([longer]) != reference([longer], context_length=400).numpy()).any()
