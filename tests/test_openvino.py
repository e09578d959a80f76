"""OpenVINO export, float and int8 (NNCF), run by OpenVINO through
`ExportedTowers`, and how far each form strays from the float model
(`export.fidelity`), measured on scikit-learn's handwritten digits."""

import json
import os
import types

import keras
import numpy as np
import pytest

from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.data.labelled import read_evaluation_set
from keras_clip.datasets import digits
from keras_clip.export.exported_towers import ExportedTowers
from keras_clip.export.fidelity import FidelityError
from keras_clip.export.fidelity import check_fidelity
from keras_clip.export.fidelity import export_fidelity
from keras_clip.export.openvino import export_openvino
from keras_clip.export.openvino_tokenizer import openvino_tokenizer
from keras_clip.export.openvino_tokenizer import openvino_tokenizer_support

pytest.importorskip("openvino")
pytest.importorskip("nncf")
Image = pytest.importorskip("PIL.Image")

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Trained here on the digits by benchmarks/int8_accuracy.py --train.
DIGITS_MODEL = os.path.join(REPOSITORY, "saved_models", "digits_clip")


def _host_has_bf16_units():
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    return "amx_bf16" in flags or "avx512_bf16" in flags


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    """The digits model, its test split as a class folder, and 64 training
    pairs as images beside same-name .txt captions (calibration data)."""
    root = tmp_path_factory.mktemp("digits")
    model, tokenizer = load_model_dir(DIGITS_MODEL)
    test = digits.load("test", model.image_size)
    for index, (image, label) in enumerate(zip(test["images"], test["labels"])):
        folder = root / "test" / digits.CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    pairs = digits.load("train", model.image_size)
    (root / "pairs").mkdir()
    for index in range(64):
        Image.fromarray(pairs["images"][index]).save(root / "pairs" / f"{index:04d}.png")
        (root / "pairs" / f"{index:04d}.txt").write_text(pairs["captions"][index])
    return model, tokenizer, root, pairs


@pytest.mark.backend("tensorflow")
def test_float_towers_equal_the_keras_model_and_bf16_is_the_hosts_choice(tmp_path):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    export_openvino(model, tmp_path, tokenizer=tokenizer)
    images = np.random.default_rng(0).normal(size=(5, 64, 64, 3)).astype("float32")
    texts = ["a photo of a red circle.", "a blue cross", "", "x y z"]
    token_ids = np.asarray(tokenizer(texts))
    expected_images = keras.ops.convert_to_numpy(model.encode_image(images))
    expected_texts = keras.ops.convert_to_numpy(model.encode_text(token_ids))
    towers = ExportedTowers(tmp_path, precision="f32")
    assert (towers.runtime, towers.precision) == ("openvino", "f32")
    found = towers.predict({"images": images, "token_ids": token_ids})
    np.testing.assert_allclose(found["image_embeddings"], expected_images, atol=1e-5, rtol=0)
    np.testing.assert_allclose(found["text_embeddings"], expected_texts, atol=1e-5, rtol=0)
    # The tokenizer graph: texts in, keras-clip's ids and embeddings out.
    np.testing.assert_array_equal(towers.tokenizer(texts), token_ids)
    np.testing.assert_allclose(towers.encode_texts(texts), expected_texts, atol=1e-5, rtol=0)
    config = json.loads((tmp_path / "openvino_config.json").read_text())
    assert config["tokenizer"] == "tokenizer.xml"
    assert config["image_preprocessing"] == model.image_preprocessing.get_config()
    assert (config["int8"], config["calibration_samples"], config["sigmoid_logits"]) == (
        None,
        0,
        False,
    )
    assert towers.logit_scale == pytest.approx(float(keras.ops.convert_to_numpy(model.logit_scale)))
    # Left to OpenVINO, a CPU with AMX or AVX512-BF16 computes in bfloat16.
    default = ExportedTowers(tmp_path)
    assert default.precision == ("bf16" if _host_has_bf16_units() else "f32")
    report = export_fidelity(model, default, images=images, token_ids=token_ids)
    assert report["precision"] == default.precision
    assert min(report["image_cosine"]["min"], report["text_cosine"]["min"]) > 0.9995


@pytest.mark.backend("tensorflow")
def test_int8_forms_keep_digits_zero_shot_and_the_command_refuses_one_that_strays(
    tmp_path, digits_data, capsys
):
    """Float top-1 at least 90%; weight-only int8 (`keras-clip export`)
    within 0.2 points of it, static int8 (Python, calibrated on 300
    training pairs) within 1 point; every embedding's cosine to the float
    model's at least 0.99. Asked for more, the command refuses."""
    model, tokenizer, root, pairs = digits_data
    command = ["export", "--model-dir", DIGITS_MODEL, "--format", "openvino"]
    command += ["--evaluation-set", str(root / "test")]
    weights = tmp_path / "weights"
    limits = ["--max-drop", "0.2", "--min-cosine", "0.99"]
    assert cli.main(command + ["--int8", "weights", *limits, "--output", str(weights)]) == 0
    printed = capsys.readouterr().out
    assert "int8 (weights)" in printed
    reports = {"weights": json.loads((weights / "fidelity.json").read_text())}
    assert json.loads(printed.strip().splitlines()[-1]) == reports["weights"]
    assert json.loads((weights / "openvino_config.json").read_text())["int8"] == "weights"
    # The command put the tokenizer in the export, and measured the export with it.
    assert (weights / "tokenizer.xml").exists() and reports["weights"]["tokenizer"] == "exported"

    calibration = [
        {"images": pairs["images"], "token_ids": np.asarray(tokenizer(pairs["captions"]))}
    ]
    static = tmp_path / "static"
    export_openvino(model, static, "static", calibration)
    config = json.loads((static / "openvino_config.json").read_text())
    assert (config["int8"], config["calibration_samples"]) == ("static", 300)
    evaluation_set = read_evaluation_set(str(root / "test"), model)
    reports["static"] = export_fidelity(model, ExportedTowers(static), tokenizer, evaluation_set)
    check_fidelity(reports["static"], max_drop=1.0, min_cosine=0.99)
    for report in reports.values():
        assert report["top1"]["float"] >= 0.90, reports
        assert report["num_images"] == 360 and report["num_texts"] == 10 * 6
    # The static form really is quantized: further from float than weight-only.
    assert reports["static"]["image_cosine"]["mean"] < reports["weights"]["image_cosine"]["mean"]

    refused = tmp_path / "refused"
    command += ["--int8", "static", "--calibration", str(root / "pairs")]
    command += ["--calibration-size", "48", "--min-cosine", "0.9999", "--output", str(refused)]
    assert cli.main(command) == 2
    error = capsys.readouterr().err
    assert "strays from the float model" in error and "cosine" in error
    assert not refused.exists() and not (tmp_path / "refused.partial").exists()


@pytest.mark.backend("tensorflow")
def test_the_tokenizer_graph_gives_keras_clips_ids():
    """CLIP's BPE (open_clip's vocabulary file) and the shipped models'
    WordPiece, converted by openvino-tokenizers: the same ids as
    `keras_clip.Tokenizer` on 1,600 ImageNet prompts and captions in a
    dozen scripts, truncation and padding included."""
    pytest.importorskip("openvino_tokenizers")
    open_clip = pytest.importorskip("open_clip")
    import openvino

    from keras_clip import Tokenizer
    from keras_clip.evaluation import prompts

    rng = np.random.default_rng(0)
    names = prompts.class_names("imagenet")
    texts = [
        template.format(names[i])
        for template in prompts.templates("openai_imagenet")
        for i in rng.choice(len(names), 20, replace=False)
    ]
    texts += ["", "   ", "Hello   WORLD!!  it's 3.14", "don't won't I'll", "tab\tnew\nline"]
    texts += ["日本語のテキスト", "中文 混合 English 123", "naïve café résumé", "l'été à Paris"]
    texts += ["Ελληνικά κείμενα", "русский текст", "مرحبا بالعالم", "emoji 😀👍 test"]
    texts += ["#tag @user https://example.com/a?b=c", "a " * 100]
    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    # The control characters ftfy deletes: deleted in the BPE graph too.
    for tokenizer, more in (
        (Tokenizer.from_clip_bpe(bpe), ["a\x00b\ufeffc"]),
        (load_model_dir(SHIPPED_MODEL)[1], []),
    ):
        graph = openvino.Core().compile_model(openvino_tokenizer(tokenizer), "CPU")
        found = graph(texts + more)["token_ids"]
        assert found.dtype == np.int32
        np.testing.assert_array_equal(found, np.asarray(tokenizer(texts + more)))
    assert "'sentencepiece' tokenizer" in openvino_tokenizer_support(
        types.SimpleNamespace(type_name="sentencepiece")
    )
    with pytest.raises(ValueError, match="ftfy in Python"):
        openvino_tokenizer(Tokenizer.from_pretrained(bpe, python_clean=True))


@pytest.mark.backend("tensorflow")
def test_bad_export_requests_are_named(tmp_path, capsys):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    token_ids = np.asarray(tokenizer(["a red circle"] * 2))
    images = np.zeros((2, 64, 64, 3), "uint8")
    with pytest.raises(ValueError, match="int8 must be one of"):
        export_openvino(model, tmp_path, int8="int4")
    with pytest.raises(ValueError, match="needs calibration data"):
        export_openvino(model, tmp_path, int8="static")
    with pytest.raises(ValueError, match="used by int8='static' only"):
        export_openvino(model, tmp_path, int8="weights", calibration=[{}])
    with pytest.raises(ValueError, match="'images' and 'token_ids'"):
        export_openvino(model, tmp_path, int8="static", calibration=[{"images": images}])
    with pytest.raises(ValueError, match="2 images but 1 token rows"):
        bad = [{"images": images, "token_ids": token_ids[:1]}]
        export_openvino(model, tmp_path, int8="static", calibration=bad)
    with pytest.raises(ValueError, match="yielded no batch"):
        export_openvino(model, tmp_path, int8="static", calibration=[])
    with pytest.raises(ValueError, match="holds no exported towers"):
        ExportedTowers(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was written by a refused request
    export_openvino(model, tmp_path)
    towers = ExportedTowers(tmp_path, precision="f32")
    with pytest.raises(ValueError, match=r"shape \(N, 64, 64, 3\)"):
        towers.encode_images(np.zeros((2, 32, 32, 3), "uint8"))
    with pytest.raises(ValueError, match=r"shape \(N, 16\)"):
        towers.encode_token_ids(token_ids[:, :8])
    with pytest.raises(ValueError, match="precision must be one of"):
        ExportedTowers(tmp_path, precision="int4")
    with pytest.raises(FidelityError, match="top1 fell 3.00 points"):
        check_fidelity({"top1": {"float": 0.9, "exported": 0.87, "change_points": -3.0}}, 1.0)
    assert cli.main(["export", "--format", "onnx", "--int8", "weights", "--output", "x"]) == 2
    assert "--int8 needs --format openvino" in capsys.readouterr().err
    assert cli.main(["export", "--format", "openvino", "--int8", "static", "--output", "x"]) == 2
    assert "--int8 static needs --calibration" in capsys.readouterr().err


@pytest.mark.backend("torch")
def test_a_model_of_another_backend_exports_through_a_tensorflow_process(tmp_path):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    export_openvino(model, tmp_path, int8="weights")
    token_ids = np.asarray(tokenizer(["a photo of a red circle.", "a blue cross"]))
    expected = keras.ops.convert_to_numpy(model.encode_text(token_ids))
    found = ExportedTowers(tmp_path, precision="f32").encode_token_ids(token_ids)
    assert np.min(np.sum(found * expected, axis=-1)) > 0.9999
