"""The README and docs work as written: every `keras_clip...` name they use
resolves, and the Python snippets of the README and the guides run (training
shortened to one step). The five-line OpenAI snippet runs in tests/test_pretrained.py, on
OpenAI-style files of a tiny model."""

import importlib
import pathlib
import re

import keras
import numpy as np
import pytest

import keras_clip

# On TensorFlow, XLA as `compile()` chooses it: the snippets as users run them.
pytestmark = [pytest.mark.backend("tensorflow"), pytest.mark.xla]

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def _resolve(dotted):
    """The object a dotted name names, importing modules as Python would."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: index + 1]))
    return obj


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_keras_clip_name_on_the_page_resolves(page):
    names = set(re.findall(r"\bkeras_clip(?:\.[A-Za-z_]\w*)+", page.read_text()))
    for name in sorted(names):
        _resolve(name.rstrip("."))


def test_the_name_check_fails_on_a_missing_name():
    with pytest.raises((AttributeError, ModuleNotFoundError)):
        _resolve("keras_clip.no_such_thing")
    assert _resolve("keras_clip.export.export_saved_model").__name__ == ("export_saved_model")


def _snippet(marker):
    """The one Python block of the README or a docs page holding `marker`."""
    (block,) = [b for page in PAGES for b in _python_blocks(page) if marker in b]
    return block


@pytest.fixture
def one_step_fits(monkeypatch):
    """`fit` runs one step of one epoch: the snippets' training, shortened."""
    fit = keras.Model.fit

    def one_step(self, *args, **kwargs):
        kwargs.update(epochs=1, steps_per_epoch=1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", one_step)


def test_readme_serving_snippet_runs(monkeypatch):
    monkeypatch.chdir(ROOT)  # it reads the shipped saved_models/shapes_clip
    namespace = {}
    exec(_snippet("tf.saved_model.load"), namespace)
    embeddings = namespace["served"].signatures["encode_text"](
        texts=namespace["tf"].constant(["a photo of a red circle."])
    )["embeddings"]
    assert embeddings.shape == (1, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings.numpy(), axis=1), 1, rtol=1e-5)


def test_readme_ten_lines_of_clip_run(one_step_fits):
    namespace = {}
    exec(_snippet("shapes.load(4096"), namespace)
    assert int(namespace["model"].optimizer.iterations) == 1
    probabilities = namespace["classifier"].predict(namespace["data"]["images"][:4])
    assert probabilities.shape == (4, 30)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_readme_own_images_snippet_runs(tmp_path, monkeypatch, one_step_fits):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rows = ["file,caption"]
    colours = ("red", "green", "blue")
    for index in range(70):
        colour = np.zeros(3, "uint8")
        colour[index % 3] = 200
        Image.fromarray(np.full((40, 48, 3), colour)).save(photos / f"{index}.png")
        rows.append(f"{index}.png,a {colours[index % 3]} square number {index}")
    (photos / "captions.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    # The snippet's ViT-B-32, at a tiny width: one training step of the
    # real one took 65-190 s of the suite; the API calls are the same.
    build = keras_clip.CLIP.from_architecture.__func__

    def tiny(cls, name, **overrides):
        assert name == "ViT-B-32"
        shape = dict(image_size=224, patch_size=32, context_length=77)
        return build(cls, "tiny-vit", **shape, **overrides)

    monkeypatch.setattr(keras_clip.CLIP, "from_architecture", classmethod(tiny))
    namespace = {}
    exec(_snippet('data.read_source("photos/")'), namespace)
    assert len(namespace["captions"]) == 70
    assert int(namespace["model"].optimizer.iterations) == 1
    assert set(namespace["train"].report.counts().values()) == {0}  # none skipped


def test_readme_webdataset_snippet_runs(tmp_path, monkeypatch, one_step_fits):
    import webdataset

    from tests.webdataset_shards import caption
    from tests.webdataset_shards import png

    (tmp_path / "laion_subset").mkdir()
    for shard in range(100):
        with webdataset.TarWriter(str(tmp_path / "laion_subset" / f"{shard:05d}.tar")) as writer:
            for index in range(3 * shard, 3 * shard + 3):
                writer.write({"__key__": f"{index:09d}", "png": png(index), "txt": caption(index)})
    tokenizer = keras_clip.Tokenizer.from_corpus([caption(i) for i in range(300)], 400)
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit",
        image_size=224,
        patch_size=32,
        vocabulary_size=tokenizer.vocabulary_size,
        context_length=tokenizer.context_length,
    )
    model.compile()
    monkeypatch.chdir(tmp_path)
    namespace = {"data": keras_clip.data, "tokenizer": tokenizer, "model": model}
    exec(_snippet("laion_subset/{00000..00099}.tar"), namespace)
    assert int(model.optimizer.iterations) == 1
    assert len(keras_clip.data.read_source("laion_subset/{00000..00099}.tar")) == 300


@pytest.mark.backend("tensorflow")
def test_readme_siglip_fine_tune_snippet_runs(tmp_path, monkeypatch, one_step_fits):

    from tests.test_siglip import _random_siglip
    from tests.test_siglip import _sentencepiece_directory

    transformers = pytest.importorskip("transformers")
    checkpoint = tmp_path / "siglip-base-patch16-224"
    _random_siglip(str(checkpoint))
    _sentencepiece_directory(str(checkpoint))
    _captioned_folder(tmp_path / "photos", lambda index: (40, 48, 3), "a photo of a big red circle")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(_snippet("siglip-base-patch16-224/"), namespace)
    assert int(namespace["model"].optimizer.iterations) == 1
    tuned = transformers.SiglipModel.from_pretrained(str(tmp_path / "siglip-tuned"))
    assert tuned.config.text_config.max_position_embeddings == 16


def test_readme_naflex_fine_tune_snippet_runs(tmp_path, monkeypatch, one_step_fits):

    from tests.test_naflex import _random_siglip2
    from tests.test_siglip import _sentencepiece_directory

    transformers = pytest.importorskip("transformers")
    checkpoint = tmp_path / "siglip2-base-patch16-naflex"
    _random_siglip2(str(checkpoint))
    _sentencepiece_directory(str(checkpoint))
    # tall, square and wide
    _captioned_folder(tmp_path / "receipts", lambda i: (20 + 7 * i, 90 - 3 * i, 3), "a receipt")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(_snippet("siglip2-base-patch16-naflex/"), namespace)
    assert int(namespace["model"].optimizer.iterations) == 1
    assert namespace["wide"].max_num_patches == 1024
    tuned = transformers.Siglip2Model.from_pretrained(str(tmp_path / "siglip2-tuned"))
    assert tuned.config.vision_config.num_patches == 16


def _captioned_folder(folder, shape_of, caption, count=20):
    """`count` flat PNGs of `shape_of(index)` and a captions.csv."""
    from PIL import Image

    folder.mkdir()
    rows = ["file,caption"]
    for index in range(count):
        pixels = np.full(shape_of(index), index * 10, "uint8")
        Image.fromarray(pixels).save(folder / f"{index}.png")
        rows.append(f"{index}.png,{caption} {index}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
