"""SigLIP 2 NaFlex: preprocessing, parity with transformers' `Siglip2Model`,
write-back, and fit on mixed-aspect images with a bounded number of shapes.

A tiny random `Siglip2Model` (every tensor perturbed) is the reference;
images of six aspect ratios (1:1, 1:4, 4:1, odd sizes, one that fills fewer
patches than the budget) at two patch budgets.
"""

import io

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers import allow_torchvision_import

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
allow_torchvision_import()
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from keras_clip.data.naflex import naflex_grid  # noqa: E402
from keras_clip.data.naflex import naflex_patches  # noqa: E402
from keras_clip.data.resampling import pil_bilinear_resize  # noqa: E402
from keras_clip.encoders.naflex_vision import NaFlexVisionTransformer  # noqa: E402

PATCH, GRID, CONTEXT, VOCABULARY = 4, 4, 16, 100
BUDGETS = (20, 64)
# (height, width): square, 1:4, 4:1, odd, tiny, and 100x60 (15 of 20 patches)
SIZES = [(40, 40), (20, 80), (80, 20), (30, 47), (9, 13), (100, 60)]
PROCESSORS = transformers.models.siglip2


def _random_siglip2(directory, seed=0):
    torch.manual_seed(seed)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = transformers.Siglip2Config(
        vision_config={**tower, "num_attention_heads": 4, "patch_size": PATCH, "num_patches": 16},
        text_config={
            **tower,
            "num_attention_heads": 4,
            "vocab_size": VOCABULARY,
            "max_position_embeddings": CONTEXT,
            "projection_size": 32,
        },
    )
    model = transformers.Siglip2Model(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(directory)
    processor = PROCESSORS.image_processing_pil_siglip2.Siglip2ImageProcessorPil
    processor(patch_size=PATCH, max_num_patches=BUDGETS[0]).save_pretrained(directory)
    return model


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(size=(h, w, 3)) * 255).astype("uint8") for h, w in SIZES]


def _naflex_batch(images, preprocessing):
    patched = [naflex_patches(tf.constant(image), preprocessing) for image in images]
    batch = {key: np.stack([p[key].numpy() for p in patched]) for key in patched[0]}
    return preprocessing.normalize(batch)


@pytest.mark.backend("torch")  # TensorFlow ops on any backend: one lane
def test_bilinear_resize_is_pils_bit_for_bit_in_both_pass_orders():
    rng = np.random.default_rng(0)
    # Pillow 13 runs the vertical pass first when the height loses more
    # than twice the pixels the width loses: cases on both sides of that.
    cases = [(200, 200, 100, 151), (200, 200, 100, 150), (31, 17, 336, 192)]
    cases += [tuple(rng.integers(1, 300, size=4)) for _ in range(25)]
    for height, width, new_height, new_width in cases:
        image = (rng.uniform(size=(height, width, 3)) * 255).astype("uint8")
        expected = Image.fromarray(image).resize((int(new_width), int(new_height)), 2)
        found = pil_bilinear_resize(tf.constant(image), [int(new_height), int(new_width)])
        np.testing.assert_array_equal(found.numpy(), np.asarray(expected))


@pytest.mark.backend("torch")
def test_patches_and_grids_equal_transformers_processors():
    from transformers.models.siglip2.image_processing_siglip2 import (
        get_image_size_for_max_num_patches,
    )

    preprocessing = keras_clip.models.ImagePreprocessing(
        None, (0.5,) * 3, (0.5,) * 3, "naflex", "bilinear", PATCH, BUDGETS[0]
    )
    for height, width in [(1, 1), (3, 700), (700, 3), (1000, 999), (16, 16), (61, 45)]:
        for budget in (1, 7, 20, 256):
            expected = get_image_size_for_max_num_patches(height, width, PATCH, budget)
            grid = naflex_grid(height, width, PATCH, budget).numpy()
            assert tuple(grid * PATCH) == expected, (height, width, budget)
    images = _images()
    pil = PROCESSORS.image_processing_pil_siglip2.Siglip2ImageProcessorPil
    torchvision = PROCESSORS.image_processing_siglip2.Siglip2ImageProcessor
    for budget in BUDGETS:
        ours = _naflex_batch(images, preprocessing.with_budget(budget))
        for processor, tolerance in ((pil, 1e-5), (torchvision, 2 / 127.5)):
            reference = processor(patch_size=PATCH, max_num_patches=budget)(
                images=[Image.fromarray(i) for i in images], return_tensors="np"
            )
            np.testing.assert_array_equal(ours["spatial_shapes"], reference["spatial_shapes"])
            np.testing.assert_allclose(
                ours["patches"], reference["pixel_values"], atol=tolerance, rtol=0
            )
    # torchvision's uint8 resize rounds a few pixels (< 0.5 %) one level off PIL's.
    with pytest.raises(ValueError, match="resize_mode='naflex'"):
        naflex_patches(tf.zeros([8, 8, 3], tf.uint8), keras_clip.models.ImagePreprocessing(32))


def test_siglip2_naflex_loads_with_equal_outputs_and_writes_back_bit_exact(tmp_path):
    reference = _random_siglip2(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    assert isinstance(model.image_encoder, NaFlexVisionTransformer)
    preprocessing = model.image_preprocessing
    assert (preprocessing.resize_mode, preprocessing.patch_size) == ("naflex", PATCH)
    assert preprocessing.max_num_patches == BUDGETS[0]  # the checkpoint's processor
    images = _images()
    token_ids = np.random.default_rng(1).integers(2, VOCABULARY, (len(SIZES), CONTEXT))
    token_ids[0, 5:] = 1
    processor = PROCESSORS.image_processing_pil_siglip2.Siglip2ImageProcessorPil(patch_size=PATCH)
    for budget in BUDGETS:
        batch = _naflex_batch(images, preprocessing.with_budget(budget))
        filled = batch["spatial_shapes"].prod(1)
        assert filled.min() < budget and filled.max() == budget  # padding used, and not
        inputs = processor(
            images=[Image.fromarray(i) for i in images], max_num_patches=budget, return_tensors="pt"
        )
        with torch.no_grad():
            out = reference(input_ids=torch.from_numpy(token_ids), **inputs)
        found = model.predict({"images": batch, "token_ids": token_ids.astype("int32")}, verbose=0)
        scale = float(keras.ops.convert_to_numpy(model.logit_scale))
        bias = float(keras.ops.convert_to_numpy(model.logit_bias))
        logits = scale * found["image_embeddings"] @ found["text_embeddings"].T + bias
        for name, ours, theirs in (
            ("image", found["image_embeddings"], out.image_embeds),
            ("text", found["text_embeddings"], out.text_embeds),
            ("logits", logits, out.logits_per_image),
        ):
            np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-4, rtol=0, err_msg=name)
    model.save_pretrained(str(tmp_path / "back"))
    reloaded = transformers.Siglip2Model.from_pretrained(str(tmp_path / "back"))
    original = reference.state_dict()
    assert set(reloaded.state_dict()) == set(original)
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, original[name]), name
    processor = transformers.AutoImageProcessor.from_pretrained(str(tmp_path / "back"))
    assert type(processor).__name__.startswith("Siglip2ImageProcessor")
    assert (processor.patch_size, processor.max_num_patches) == (PATCH, BUDGETS[0])


class _HashTokenizer:
    """Words hashed into the tiny model's vocabulary (TensorFlow ops)."""

    context_length = CONTEXT

    def tokenize(self, captions):
        ids = tf.strings.to_hash_bucket_fast(tf.strings.split(captions), VOCABULARY - 2) + 2
        return tf.cast(ids.to_tensor(default_value=1, shape=[None, CONTEXT]), tf.int32)

    def tf_resources(self):  # (a SavedModel tracks a tokenizer's lookup tables)
        return []


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.backend("tensorflow", "jax")  # compiled train steps (PyTorch runs eagerly)
def test_fit_on_mixed_aspect_images_compiles_one_shape_per_budget(tmp_path, monkeypatch):
    _random_siglip2(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    rng = np.random.default_rng(0)
    shapes = [(20, 80), (80, 20), (40, 40), (33, 51), (64, 16), (17, 90)] * 2
    images = [_png((rng.uniform(size=(h, w, 3)) * 255).astype("uint8")) for h, w in shapes]
    captions = [f"picture {i} of shape {h} by {w}" for i, (h, w) in enumerate(shapes)]
    dataset = keras_clip.data.image_text_dataset(
        (images, captions), _HashTokenizer(), model, batch_size=4, seed=0
    )
    spec = dataset.element_spec["images"]
    assert spec["patches"].shape.as_list()[1:] == [BUDGETS[0], PATCH * PATCH * 3]
    traced = []
    call = NaFlexVisionTransformer.call

    def counting_call(self, images):
        traced.append(tuple(images["patches"].shape))
        return call(self, images)

    monkeypatch.setattr(NaFlexVisionTransformer, "call", counting_call)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(dataset, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()
    # 9 steps over 12 mixed-aspect images, one patch shape: traced once
    # (TensorFlow may trace a second time to relax the batch dimension).
    assert set(traced) <= {(4, BUDGETS[0], 48), (None, BUDGETS[0], 48)}
    assert 1 <= len(traced) <= 2, traced


@pytest.mark.backend("tensorflow")  # (JAX and PyTorch exports: tests/test_saved_models.py)
def test_saved_model_encodes_jpeg_bytes_with_naflex_in_the_graph(tmp_path):
    reference = _random_siglip2(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    jpegs = []
    for image in _images():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
        jpegs.append(buffer.getvalue())
    keras_clip.export.export_saved_model(model, _HashTokenizer(), str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    found = served.encode_image_bytes(tf.constant(jpegs))["embeddings"].numpy()
    decoded = [Image.open(io.BytesIO(jpeg)).convert("RGB") for jpeg in jpegs]
    expected = {}
    for name, processor in (
        ("pil", PROCESSORS.image_processing_pil_siglip2.Siglip2ImageProcessorPil),
        ("torchvision", PROCESSORS.image_processing_siglip2.Siglip2ImageProcessor),
    ):
        inputs = processor(patch_size=PATCH, max_num_patches=BUDGETS[0])(
            images=decoded, return_tensors="pt"
        )
        with torch.no_grad():
            features = reference.get_image_features(**inputs)
        features = getattr(features, "pooler_output", features)
        expected[name] = torch.nn.functional.normalize(features, dim=-1).numpy()
    np.testing.assert_allclose(found, expected["pil"], atol=1e-4, rtol=0)
    # transformers' torchvision processor (its default where torchvision is
    # installed) resizes uint8 a level off PIL in a few pixels: we are as
    # close to it as its own two processors are to each other.
    gap = np.abs(expected["pil"] - expected["torchvision"]).max()
    assert np.abs(found - expected["torchvision"]).max() <= gap + 1e-4
    # uint8 pixels of one size go the same way
    pixels = np.stack([np.asarray(decoded[0])] * 2)
    again = served.encode_image(tf.constant(pixels))["embeddings"].numpy()
    np.testing.assert_allclose(again, found[[0, 0]], atol=1e-6, rtol=0)


@pytest.mark.backend("tensorflow")  # the commands' wiring, once
def test_cli_zero_shot_evaluate_and_embed_take_a_naflex_checkpoint(tmp_path, capsys):
    import json

    from keras_clip import cli
    from tests.test_siglip import _sentencepiece_directory

    checkpoint = str(tmp_path / "hf")
    _random_siglip2(checkpoint)
    _sentencepiece_directory(checkpoint)
    rng = np.random.default_rng(0)
    paths = []
    for name, index in [("cat", 0), ("cat", 1), ("dog", 2), ("dog", 3)]:
        (tmp_path / "set" / name).mkdir(parents=True, exist_ok=True)
        height, width = SIZES[index]
        path = tmp_path / "set" / name / f"{index}.png"
        Image.fromarray((rng.uniform(size=(height, width, 3)) * 255).astype("uint8")).save(path)
        paths.append(str(path))
    model = keras_clip.CLIP.from_pretrained(checkpoint)
    tokenizer = keras_clip.Tokenizer.from_pretrained(checkpoint)
    images = keras_clip.data.load_images(paths, model)  # NaFlex: uint8 patches and grids
    assert images["patches"].shape == (4, BUDGETS[0], 48)
    expected = keras_clip.ZeroShotClassifier(model, tokenizer, ["cat", "dog"]).predict(images)

    args = ["zero-shot", *paths, "--classes", "cat,dog", "--pretrained", checkpoint, "--json"]
    assert cli.main(args) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for row, result in zip(expected, found):
        probabilities = {r["label"]: r["probability"] for r in result["ranked"]}
        assert [probabilities["cat"], probabilities["dog"]] == pytest.approx(row, abs=1e-4)

    output = tmp_path / "eval"
    args = ["evaluate", "--pretrained", checkpoint, "--zero-shot", str(tmp_path / "set")]
    assert cli.main([*args, "--output", str(output), "--batch-size", "2"]) == 0
    report = json.loads((output / "report.json").read_text())
    python = keras_clip.evaluation.evaluate_zero_shot(
        model, tokenizer, images, np.array([0, 0, 1, 1]), ["cat", "dog"]
    )
    assert report["zero_shot"]["num_images"] == 4
    assert report["zero_shot"]["confusion_matrix"] == python["confusion_matrix"]

    rows = ["file,caption"] + [f"{p},picture {i}" for i, p in enumerate(paths)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    output = tmp_path / "retrieval"
    args = ["evaluate", "--pretrained", checkpoint, "--data", str(tmp_path / "pairs.csv")]
    assert cli.main([*args, "--output", str(output), "--batch-size", "2"]) == 0
    retrieval = json.loads((output / "report.json").read_text())["retrieval"]
    texts = tokenizer([f"picture {i}" for i in range(4)])
    normalized = model.image_preprocessing.normalize(images)
    found = model.predict({"images": normalized, "token_ids": texts}, verbose=0)
    python = keras_clip.evaluation.retrieval_metrics(
        found["image_embeddings"], found["text_embeddings"], np.arange(4)
    )
    assert retrieval == pytest.approx(python)

    index = tmp_path / "index"
    args = ["embed", str(tmp_path / "set"), str(index), "--pretrained", checkpoint]
    assert cli.main([*args, "--batch-size", "2", "--part-size", "2"]) == 0
    stored = np.concatenate([np.load(index / "img_emb" / f"img_emb_{i}.npy") for i in (0, 1)])
    # (the checkpoint's budget and tokenizer came along; a .keras file keeps the tower)
    direct = keras.ops.convert_to_numpy(
        model.encode_image(model.image_preprocessing.normalize(images))
    )
    np.testing.assert_allclose(stored, direct, atol=1e-5)


@pytest.mark.backend("tensorflow")  # tf2onnx and OpenVINO trace a TensorFlow graph
def test_onnx_and_openvino_image_towers_take_patches_and_grids(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    _random_siglip2(str(tmp_path / "hf"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"))
    keras_clip.export.export_onnx(model, str(tmp_path / "onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "image_encoder.onnx"))
    assert [i.name for i in session.get_inputs()] == ["patches", "spatial_shapes"]
    batch = _naflex_batch(_images(), model.image_preprocessing)
    (found,) = session.run(None, batch)
    expected = keras.ops.convert_to_numpy(model.encode_image(batch))
    np.testing.assert_allclose(found, expected, atol=1e-5, rtol=0)
    openvino = pytest.importorskip("openvino")
    keras_clip.export.export_openvino(model, str(tmp_path / "ov"))
    tower = openvino.Core().compile_model(
        str(tmp_path / "ov" / "image_encoder.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    np.testing.assert_allclose(tower(batch)[0], expected, atol=1e-5, rtol=0)


@pytest.mark.backend("tensorflow")  # the command's wiring, once
def test_train_command_fine_tunes_a_naflex_checkpoint(tmp_path):
    from keras_clip import cli
    from tests.test_siglip import _sentencepiece_directory

    checkpoint = str(tmp_path / "hf")
    _random_siglip2(checkpoint)
    _sentencepiece_directory(checkpoint)
    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,caption"]
    for index in range(8):
        height, width = SIZES[index % len(SIZES)]
        pixels = (rng.uniform(size=(height, width, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"{index}.png")
        rows.append(f"{index}.png,picture {index}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    args = ["train", str(folder), "--pretrained", checkpoint, "--epochs", "1"]
    assert (
        cli.main([*args, "--batch-size", "4", "--verbose", "0", "--output", str(tmp_path / "out")])
        == 0
    )
    start = keras_clip.CLIP.from_pretrained(checkpoint)
    tuned = keras.saving.load_model(str(tmp_path / "out" / "model.keras"))
    assert isinstance(tuned.image_encoder, NaFlexVisionTransformer)
    assert tuned.image_preprocessing == start.image_preprocessing  # naflex, 4 px, 20 patches
    moved = [
        np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()
        for a, b in zip(start.weights, tuned.weights)
    ]
    assert len(moved) == len(start.weights) and max(moved) > 1e-4


@pytest.mark.backend("jax", "torch")  # JAX scans the slices, PyTorch loops over them
def test_micro_batches_of_patch_dicts_train_as_one_batch(tmp_path):
    _random_siglip2(str(tmp_path / "hf"))
    batch = None
    results = []
    for micro_batches in (1, 3):
        model = keras_clip.CLIP.from_pretrained(str(tmp_path / "hf"), micro_batches=micro_batches)
        if batch is None:
            images = _naflex_batch(_images(), model.image_preprocessing)
            token_ids = np.random.default_rng(1).integers(2, VOCABULARY, (len(SIZES), CONTEXT))
            batch = {"images": images, "token_ids": token_ids.astype("int32")}
        model.compile(optimizer=keras.optimizers.SGD(1.0))
        history = model.fit(batch, batch_size=len(SIZES), epochs=1, shuffle=False, verbose=0)
        results.append((history.history["loss"][0], model.get_weights()))
    (loss, weights), (sliced_loss, sliced_weights) = results
    assert sliced_loss == pytest.approx(loss, rel=1e-5)
    for a, b in zip(weights, sliced_weights):
        np.testing.assert_allclose(b, a, atol=2e-5, rtol=0)


@pytest.mark.backend("torch")  # input checks: before any backend op
def test_bad_naflex_inputs_are_named():
    encoder = NaFlexVisionTransformer(PATCH, 32, 1, 4, position_grid_size=GRID)
    patches = np.zeros((2, 8, 48), "float32")
    grids = np.array([[2, 4], [1, 3]], "int32")
    assert tuple(encoder({"patches": patches, "spatial_shapes": grids}).shape) == (2, 32)
    bad = [
        (np.zeros((2, 16, 16, 3), "float32"), "a dict with 'patches' and 'spatial_shapes'"),
        ({"patches": patches}, "a dict with 'patches' and 'spatial_shapes'"),
        ({"patches": patches[..., :40], "spatial_shapes": grids}, r"\(batch, length, 48\)"),
        ({"patches": patches.astype("uint8"), "spatial_shapes": grids}, "floating point"),
        ({"patches": patches, "spatial_shapes": grids[:, :1]}, "integer \\(batch, 2\\)"),
        ({"patches": patches, "spatial_shapes": grids[:1]}, "different batch sizes"),
    ]
    for images, message in bad:
        with pytest.raises(ValueError, match=message):
            encoder(images)
    # Grid values are checked where they arrive as NumPy (predict, fit, normalize).
    model = keras_clip.CLIP(encoder, keras_clip.encoders.SigLIPTextTransformer(100, 16, 32, 1, 4), 32,
                            project_image=False, project_text=False)  # fmt: skip
    preprocessing = keras_clip.models.ImagePreprocessing(
        None, (0.5,) * 3, (0.5,) * 3, "naflex", "bilinear", PATCH, 8
    )
    for grids, message in (([[3, 3], [1, 1]], "at most 8"), ([[0, 3], [1, 1]], "at least 1x1")):
        images = {"patches": patches, "spatial_shapes": np.array(grids, "int32")}
        with pytest.raises(ValueError, match=message):
            model.predict({"images": images}, verbose=0)
        with pytest.raises(ValueError, match=message):
            preprocessing.normalize({**images, "patches": patches.astype("uint8")})
