"""NLLB's tokenizer (NLLB-CLIP's text tower): a SentencePiece BPE model under
fairseq's dictionary with a token per language, read from its
`tokenizer.json` (keras_clip.tokenizers.nllb_proto). Ids equal to
transformers' `NllbTokenizer` for the checkpoint's form and for transformers
5's, in any language, and to open_clip's `HFTokenizer`. The BPE model is
trained here with SentencePiece; transformers converts it, and the three
language codes are a stand-in for NLLB-200's 202."""

import json
import os
import shutil

import numpy as np
import pytest

import keras_clip
from tests.helpers import import_open_clip
from tests.test_unigram_tokenizers import CONTEXT
from tests.test_unigram_tokenizers import WORDS
from tests.test_unigram_tokenizers import _assert_same_ids
from tests.test_unigram_tokenizers import train_fairseq_model

# tensorflow-text graph code, the same on every Keras backend: one lane.
pytestmark = pytest.mark.backend("tensorflow")
transformers = pytest.importorskip("transformers")

CODES = ["eng_Latn", "fra_Latn", "zho_Hans"]
TRICKY = [
    "a photo of a cat",
    "une photo d'un chat",
    "猫の写真 zzz Ω 😀😀 x",  # characters outside the vocabulary, in a run
    "Ａｎ ｅｘａｍｐｌｅ",  # NFKC: full-width letters
    "cafe\u0301 e\u0301cole",
    "fra_Latn written in a caption",  # a language code in the text: its own id
    "a <mask> b",  # not matched: NLLB's <mask> is for masked training only
    "",
]


def nllb_checkpoint(work, saved):
    """A trained NLLB-style tokenizer, converted by transformers (in the
    folder `work`) and saved by it to `saved`; the transformers tokenizer."""
    trained = os.path.join(work, "trained")
    os.makedirs(trained)
    train_fairseq_model(trained, model_type="bpe", vocab_size=300)
    settings = {"tokenizer_class": "NllbTokenizer", "src_lang": "eng_Latn"}
    settings.update(additional_special_tokens=CODES, model_max_length=1024)
    with open(os.path.join(trained, "tokenizer_config.json"), "w") as f:
        json.dump(settings, f)
    reference = transformers.AutoTokenizer.from_pretrained(trained)
    assert type(reference).__name__ == "NllbTokenizer"
    reference.save_pretrained(saved)
    return reference


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The tokenizer as the Hugging Face checkpoint ships it (the model file,
    tokenizer.json, tokenizer_config.json) and as transformers 5 saves it
    (tokenizer.json and tokenizer_config.json), with its transformers
    reference."""
    root = tmp_path_factory.mktemp("nllb")
    saved = str(root / "saved")
    reference = nllb_checkpoint(str(root), saved)
    assert sorted(os.listdir(saved)) == ["tokenizer.json", "tokenizer_config.json"]
    trained = str(root / "trained")
    shipped = str(root / "shipped")
    shutil.copytree(saved, shipped)
    shutil.copy(os.path.join(trained, "sentencepiece.bpe.model"), shipped)
    return {"reference": reference, "saved": saved, "shipped": shipped, "root": root}


@pytest.mark.parametrize("form", ["shipped", "saved"])
def test_nllb_ids_equal_transformers_in_each_language(checkpoints, form):
    reference = checkpoints["reference"]
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoints[form], context_length=CONTEXT)
    assert tokenizer.vocabulary_size == len(reference)
    assert tokenizer.vocabulary[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert [tokenizer.vocabulary.index(code) for code in CODES] == [
        reference.convert_tokens_to_ids(code) for code in CODES
    ]
    rng = np.random.default_rng(3)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(1, 14))) for _ in range(200)]
    for language in CODES:
        reference.src_lang = language
        in_language = tokenizer.for_language(language)
        assert in_language.start_id == reference.convert_tokens_to_ids(language)
        _assert_same_ids(in_language, reference, TRICKY + sentences)
    reference.src_lang = "eng_Latn"
    _, truncated = tokenizer.tokenize_and_count(sentences)
    assert truncated.numpy().tolist() == [
        len(ids) > CONTEXT for ids in reference(sentences)["input_ids"]
    ]
    assert any(truncated.numpy())
    with pytest.raises(ValueError, match="not one of this tokenizer's language codes"):
        tokenizer.for_language("deu_Latn")


def test_open_clip_hf_tokenizer_ids(checkpoints, tmp_path):
    """open_clip's NLLB-CLIP configs: `HFTokenizer` with its whitespace
    clean-up and 77 tokens. A `language` in the config's `tokenizer_kwargs`
    starts captions with that code, as transformers' `src_lang` does (open_clip
    3.3's `HFTokenizer(language=...)` calls `set_src_lang_special_tokens`,
    which transformers 5 undoes at the next call)."""
    open_clip = import_open_clip()
    directory = tmp_path / "open_clip"
    shutil.copytree(checkpoints["shipped"], directory)
    text_cfg = {"hf_tokenizer_name": "facebook/nllb-200-distilled-600M"}
    (directory / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": {"text_cfg": text_cfg}})
    )
    reference = open_clip.tokenizer.HFTokenizer(str(directory), context_length=77)
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(directory))
    assert (tokenizer.context_length, tokenizer.start_piece) == (77, "eng_Latn")
    texts = TRICKY + ["  leading and  trailing  ", "tab\tnew\nline"]
    np.testing.assert_array_equal(tokenizer(texts), reference(texts).numpy())
    text_cfg["tokenizer_kwargs"] = {"language": "fra_Latn"}
    (directory / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": {"text_cfg": text_cfg}})
    )
    french = keras_clip.Tokenizer.from_pretrained(str(directory))
    np.testing.assert_array_equal(french(texts), tokenizer.for_language("fra_Latn")(texts))


def test_what_cannot_be_read_is_named(checkpoints, tmp_path):
    no_json = str(tmp_path / "no_json")
    os.makedirs(no_json)
    shutil.copy(os.path.join(checkpoints["shipped"], "sentencepiece.bpe.model"), no_json)
    shutil.copy(os.path.join(checkpoints["shipped"], "tokenizer_config.json"), no_json)
    with pytest.raises(ValueError, match="NLLB's tokenizer is read from its tokenizer.json"):
        keras_clip.Tokenizer.from_pretrained(no_json)
    legacy = str(tmp_path / "legacy")
    shutil.copytree(checkpoints["saved"], legacy)
    path = os.path.join(legacy, "tokenizer_config.json")
    with open(path) as f:
        settings = json.load(f)
    with open(path, "w") as f:
        json.dump(dict(settings, legacy_behaviour=True), f)
    with pytest.raises(ValueError, match="legacy_behaviour"):
        keras_clip.Tokenizer.from_pretrained(legacy)
