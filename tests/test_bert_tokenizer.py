"""CLIPA's tokenizer: a Hugging Face BERT WordPiece directory (vocab.txt, or
transformers 5's tokenizer.json), ids equal to open_clip's `HFTokenizer`
with and without `strip_sep_token`, and to transformers' `BertTokenizer`."""

import json
import shutil

import numpy as np
import pytest

import keras_clip
from tests.helpers import import_open_clip

pytestmark = pytest.mark.backend("tensorflow")  # tokenisation is TensorFlow ops: one lane

CONTEXT = 12
WORDS = "a photo of the cat dog red blue square circle cafe naive big small on in"
VOCABULARY = list(
    dict.fromkeys(  # ("a" is a letter and a word: once)
        ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list(".,!?'\"()-:;&#$%/")
        + list("abcdefghijklmnopqrstuvwxyz0123456789")
        + ["中", "文", "é"]
        + WORDS.split()
        + ["##s", "##ing", "##ed", "##er", "##e", "##o"]
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    )
)
TRICKY = [
    "a photo of a cat.",
    "A PHOTO of the Dogs!",
    "café naïve CAFÉ",
    "中文 and cats",
    "  spaced   out\ttabs\nnew lines  ",
    "",
    "unknownword xyzzy",
    "emoji 😀 here",
    "a,b;c:d(e)f\"g'h",
    "$5 & 20% off #1",
    "a photo of the big red square on the small blue circle in the dog",  # truncated
    "cats dogs squared circled",
]


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("bert")
    (root / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(str(root / "vocab.txt"))
    tokenizer.save_pretrained(str(root / "json"))  # transformers 5: tokenizer.json only
    shutil.copytree(root / "json", root / "txt")
    (root / "txt" / "tokenizer.json").unlink()
    shutil.copy(root / "vocab.txt", root / "txt" / "vocab.txt")  # the Hub's bert-base-uncased
    return {"json": str(root / "json"), "txt": str(root / "txt"), "reference": tokenizer}


@pytest.mark.parametrize("form", ["json", "txt"])
@pytest.mark.parametrize("strip_sep_token", [False, True])
def test_ids_equal_open_clips_hf_tokenizer(directories, form, strip_sep_token, tmp_path):
    open_clip = import_open_clip()
    directory = tmp_path / "open_clip"
    shutil.copytree(directories[form], directory)
    text_cfg = {
        "context_length": CONTEXT,
        "hf_tokenizer_name": "bert-base-uncased",
        "tokenizer_kwargs": {"strip_sep_token": strip_sep_token},
    }
    (directory / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": {"text_cfg": text_cfg}})
    )
    reference = open_clip.tokenizer.HFTokenizer(
        str(directory), context_length=CONTEXT, strip_sep_token=strip_sep_token
    )
    tokenizer = keras_clip.Tokenizer.from_pretrained(str(directory))
    assert tokenizer.context_length == CONTEXT
    expected = reference(TRICKY).numpy()
    np.testing.assert_array_equal(tokenizer(TRICKY), expected)
    assert (expected == VOCABULARY.index("[SEP]")).any() != strip_sep_token
    # In the graph, and after save / load.
    tokenizer.save(str(tmp_path / "saved"))
    again = keras_clip.Tokenizer.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again.tokenize(TRICKY).numpy(), expected)


def test_a_bert_directory_alone_frames_with_cls_and_sep(directories):
    reference = directories["reference"]
    tokenizer = keras_clip.Tokenizer.from_pretrained(directories["txt"], context_length=CONTEXT)
    expected = reference(TRICKY, padding="max_length", max_length=CONTEXT, truncation=True)
    np.testing.assert_array_equal(tokenizer(TRICKY), np.array(expected["input_ids"]))
    assert tokenizer.start_id == VOCABULARY.index("[CLS]")
    assert tokenizer.end_id == VOCABULARY.index("[SEP]")
