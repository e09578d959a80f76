"""Every fenced example in the package's docstrings runs.

Each ```python block runs in a fresh namespace holding its module's globals
(as doctest does) and the names the examples use (a tiny model, a
tokenizer, images, embeddings, a folder of photos, a Hugging Face checkpoint
directory, ...), in a folder with those files; `fit` runs one step. One
backend is enough (the examples are backend-neutral): they run in the
PyTorch lane, the shortest of the suite.
"""

import gzip
import importlib
import inspect
import pkgutil
import re
import textwrap

import keras
import numpy as np
import pytest

import keras_clip

pytestmark = pytest.mark.backend("torch")

SKIPPED_MODULES = {"keras_clip.cli.__main__"}
# Examples that need another backend than this lane's, and the test that
# runs their steps there.
ELSEWHERE = {
    # JAX only: tests/fsdp_check.py runs these steps on 8 simulated devices,
    # test_sharding's sharded-state test on the JAX lane.
    "keras_clip.models.sharding.FullyShardedDataParallel[0]",
    "keras_clip.models.sharding.train_step_memory[0]",
    "keras_clip.training.sharded_state[0]",
    # An export, then its use: tests/test_openvino.py runs these steps on
    # the TensorFlow lane (here each export would start a TensorFlow process).
    "keras_clip.export.openvino[0]",
    "keras_clip.export.exported_towers[0]",
    "keras_clip.export.exported_towers.ExportedTowers[0]",
    "keras_clip.export.fidelity[0]",
    # A full-size ConvNeXt checkpoint, read and written back: the steps of
    # tests/test_open_clip_convnext.py (timm's convnext_tiny tower).
    "keras_clip.pretrained.open_clip_convnext[0]",
    # The same for a MobileCLIP 2 directory: tests/test_open_clip_fastvit.py,
    # and for an XLM-RoBERTa CLIP: tests/test_open_clip_hf_text.py.
    "keras_clip.pretrained.open_clip_fastvit[0]",
    "keras_clip.pretrained.open_clip_hf_text[0]",
    # And for a Swin CLIP: tests/test_open_clip_swin.py, and a CoCa:
    # tests/test_open_clip_coca.py.
    "keras_clip.pretrained.open_clip_swin[0]",
    "keras_clip.pretrained.open_clip_coca[0]",
    # XLM-V's sentencepiece.bpe.model, reordered and tokenizing: the steps of
    # tests/test_unigram_tokenizers.py (a fairseq model trained there).
    "keras_clip.tokenizers.unigram_proto[0]",
    # NLLB's tokenizer.json converted: Tokenizer.from_pretrained's steps in
    # tests/test_nllb_tokenizer.py (a BPE model trained there).
    "keras_clip.tokenizers.nllb_proto[0]",
    # A RoBERTa tokenizer directory: tests/test_roberta_tokenizer.py trains one.
    "keras_clip.tokenizers.byte_level_bpe.ByteLevelBPETokenizer[0]",
}


def _blocks(doc):
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", doc or "", re.S)]


def _examples():
    """(name, module, code) for every fenced block of every docstring."""
    found = []
    modules = [keras_clip] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(keras_clip.__path__, "keras_clip.")
        if info.name not in SKIPPED_MODULES
    ]
    for module in modules:
        owners = [(module.__name__, module)]
        for name, member in vars(module).items():
            if getattr(member, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(member) or inspect.isfunction(member):
                owners.append((f"{module.__name__}.{name}", member))
            if inspect.isclass(member):
                owners += [
                    (f"{module.__name__}.{name}.{attr}", value)
                    for attr, value in vars(member).items()
                    if inspect.isfunction(getattr(value, "__func__", value))
                ]
        for qualname, owner in owners:
            doc = owner.__doc__ if not isinstance(owner, classmethod) else owner.__func__.__doc__
            for index, code in enumerate(_blocks(doc)):
                found.append((f"{qualname}[{index}]", module, code))
    return found


ALL_EXAMPLES = _examples()
EXAMPLES = [example for example in ALL_EXAMPLES if example[0] not in ELSEWHERE]


def test_the_examples_are_found():
    names = [name for name, _, _ in EXAMPLES]
    assert len(names) > 50
    assert "keras_clip.models.clip.CLIP[0]" in names
    assert "keras_clip.objectives.functional.clip_loss[0]" in names
    assert ELSEWHERE <= {name for name, _, _ in ALL_EXAMPLES}  # no stale entry


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with the files the examples name, and the names they use."""
    import tensorflow as tf
    import transformers

    from keras_clip.datasets import shapes
    from tests.test_clip_bpe import MERGES
    from tests.test_pretrained import _clip_config
    from tests.test_pretrained_tokenizer import _huggingface_directory

    root = tmp_path_factory.mktemp("examples")
    data = shapes.load(70, image_size=224, seed=0)
    (root / "photos").mkdir()
    rows = ["file,caption"]
    for index, (image, caption) in enumerate(zip(data["images"], data["captions"])):
        tf.io.write_file(str(root / "photos" / f"{index}.png"), tf.io.encode_png(image))
        rows.append(f"{index}.png,{caption}")
    (root / "photos" / "captions.csv").write_text("\n".join(rows) + "\n")
    tf.io.write_file(str(root / "cat.jpg"), tf.io.encode_jpeg(data["images"][0]))
    tf.io.write_file(str(root / "dog.png"), tf.io.encode_png(data["images"][1]))
    with gzip.open(root / "bpe_simple_vocab_16e6.txt.gz", "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    checkpoint = root / "clip-vit-base-patch32"
    checkpoint.mkdir()
    _huggingface_directory(checkpoint)
    vocabulary = keras_clip.Tokenizer.from_pretrained(str(checkpoint)).vocabulary_size
    config = _clip_config(vocabulary=vocabulary, context=77, end=vocabulary - 1)
    transformers.CLIPModel(config).save_pretrained(checkpoint)

    # An evaluation set in CLIP_benchmark's layout, a SigLIP checkpoint.
    from tests.evaluation_sets import build_clip_benchmark
    from tests.test_siglip import _random_siglip
    from tests.test_siglip import _sentencepiece_directory

    build_clip_benchmark(str(root / "wds_cifar10"), count=10)
    # An open_clip PE-Core directory (random weights, full size).
    from tests.test_open_clip_eva import _open_clip_directory

    pe_core = keras_clip.models.architectures.open_clip_architectures()["PE-Core-T-16-384"]
    _open_clip_directory(pe_core, root / "PE-Core-T-16-384")
    _random_siglip(str(root / "siglip-base-patch16-224"))
    _sentencepiece_directory(str(root / "siglip-base-patch16-224"))
    # SigLIP 2's tokenizer as transformers 5 saves it: tokenizer.json alone.
    from tests.test_gemma_tokenizer import _checkpoint
    from tests.test_gemma_tokenizer import train_gemma_model

    gemma = _checkpoint(str(root / "gemma"), train_gemma_model(str(root)), "Siglip2Tokenizer", {})
    transformers.AutoTokenizer.from_pretrained(gemma).save_pretrained(str(root / "siglip2"))

    tokenizer = keras_clip.Tokenizer.from_corpus(data["captions"], 200, context_length=16)
    model = keras_clip.CLIP.from_architecture(  # 224 pixels, as the examples' data
        "tiny-vit",
        image_size=224,
        patch_size=32,
        vocabulary_size=tokenizer.vocabulary_size,
        context_length=16,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    images = model.image_preprocessing.normalize(data["images"][:8])
    token_ids = tokenizer(data["captions"][:8])
    embeddings = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    image_embeddings = embeddings["image_embeddings"]
    text_embeddings = embeddings["text_embeddings"]
    labels = np.arange(8) % 2
    names = {
        "np": np,
        "keras": keras,
        "tf": tf,
        "keras_clip": keras_clip,
        "model": model,
        "tokenizer": tokenizer,
        "images": images,
        "token_ids": token_ids,
        "captions": data["captions"][:8],
        "labels": labels,
        "image_embeddings": image_embeddings,
        "text_embeddings": text_embeddings,
        "normalized_embeddings": image_embeddings,
        "logits": 10.0 * image_embeddings @ text_embeddings.T,
        "features": image_embeddings,
        "test_features": text_embeddings,
        "x_train": images,
        "y_train": labels,
        "x_test": images,
        "y_test": labels,
        "train": keras_clip.data.image_text_dataset(
            str(root / "photos"), tokenizer, 224, 8, seed=0
        ),
    }
    return root, names


@pytest.mark.parametrize("name, module, code", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_docstring_example_runs(name, module, code, workspace, monkeypatch):
    root, names = workspace
    fit = keras.Model.fit

    def one_step(self, *args, **kwargs):
        kwargs.update(epochs=1, steps_per_epoch=1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", one_step)
    monkeypatch.chdir(root)
    namespace = {**vars(module), **names}
    exec(compile(code, name, "exec"), namespace)
