"""tf.data pipelines over real folders and shards with bad entries."""

import io
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from PIL import ImageOps

import keras_clip
from keras_clip import data
from keras_clip.data import images as image_ops
from tests import image_folders

IMAGE_SIZE = 32
# tf.data and the image ops are TensorFlow code whatever the Keras backend:
# tests of the pipeline alone run once, in the PyTorch run of the suite (the
# shortest lane);
# tests that feed a model run on every backend.
PIPELINE_ONLY = pytest.mark.backend("torch")


@pytest.fixture(scope="module")
def tokenizer():
    words = (
        "picture on the left right another view of a truncated text file "
        "missing no named white black"
    )
    corpus = [words] + [str(i) for i in range(60)]
    return keras_clip.Tokenizer.from_corpus(corpus, 120, context_length=16)


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("csv_folder"))
    return folder, image_folders.build_folder(folder, "csv")


@pytest.fixture(scope="module")
def shards(csv_folder, tmp_path_factory):
    folder, expected = csv_folder
    output = str(tmp_path_factory.mktemp("shards"))
    written = data.write_tfrecords(folder, output, shard_size=10)
    return output, written, expected


def _collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    return (
        np.concatenate([b["images"] for b in batches]),
        np.concatenate([b["token_ids"] for b in batches]),
    )


def _reference_images(folder, names):
    """PIL decoding, made RGB, then the pipeline's own crop (TF)."""
    result = []
    for name in names:
        image = Image.open(os.path.join(folder, name))
        if image.mode == "I;16":
            pixels = np.round(np.asarray(image) / 257.0).astype("uint8")
            image = Image.fromarray(pixels)
        pixels = np.asarray(image.convert("RGB"))
        cropped = image_ops.center_crop(tf.constant(pixels), IMAGE_SIZE)
        result.append(image_ops.normalize(cropped).numpy())
    return np.stack(result)


@PIPELINE_ONLY
@pytest.mark.parametrize("captions_format", ["csv", "jsonl"])
def test_folder_evaluation_yields_exactly_the_valid_pairs(tmp_path, tokenizer, captions_format):
    expected = image_folders.build_folder(str(tmp_path), captions_format)
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 16, training=False)
    images, token_ids = _collect(dataset)
    names = [name for name, _ in expected["pairs"]]
    np.testing.assert_array_equal(token_ids, tokenizer([c for _, c in expected["pairs"]]))
    np.testing.assert_allclose(images, _reference_images(str(tmp_path), names), atol=0.1)
    assert dataset.report.counts() == expected["counts"]


@PIPELINE_ONLY
def test_training_dataset_skips_bad_entries_and_counts_them(csv_folder, tokenizer):
    folder, expected = csv_folder
    dataset = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 8, seed=0)
    images, token_ids = _collect(dataset)
    num_images = len({name for name, _ in expected["pairs"]})
    assert images.shape == (num_images // 8 * 8, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert images.dtype == np.float32 and token_ids.dtype == np.int32
    assert dataset.report.counts() == expected["counts"]
    dataset.report.reset()
    assert not any(dataset.report.counts()[r] for r in ("unreadable_image", "not_an_image"))


@PIPELINE_ONLY
def test_tfrecords_round_trip_and_count_bad_images(shards, tokenizer, csv_folder):
    output, written, expected = shards
    folder, _ = csv_folder
    assert len(written["shards"]) == 6 and written["images"] == 54
    assert written["skipped"] == {"missing_file": 3, "missing_field": 3}
    from_shards = data.image_text_dataset(output, tokenizer, IMAGE_SIZE, 16, training=False)
    from_folder = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 16, training=False)
    for got, want in zip(_collect(from_shards), _collect(from_folder)):
        np.testing.assert_array_equal(got, want)
    counts = from_shards.report.counts()
    assert counts == dict(expected["counts"], missing_file=0, missing_field=0)
    training = data.image_text_dataset(
        os.path.join(output, "*.tfrecord"), tokenizer, IMAGE_SIZE, 8, seed=3
    )
    assert sum(len(b["images"]) for b in training) == 48


@PIPELINE_ONLY
def test_shards_are_counted_once(shards, monkeypatch):
    from keras_clip.data import shards as shard_reading

    calls = []
    counter = shard_reading.count_records
    monkeypatch.setattr(shard_reading, "count_records", lambda p: calls.append(p) or counter(p))
    source = data.read_source(shards[0])
    assert len(source.images) == len(shards[1]["shards"]) == 6  # shard paths
    assert source.num_images() == len(source) == 54 and len(calls) == 1


@PIPELINE_ONLY
def test_same_seed_same_batches_other_seed_other_batches(shards, tokenizer):
    output, _, _ = shards

    def first_batches(seed):
        dataset = data.image_text_dataset(
            output, tokenizer, IMAGE_SIZE, 8, seed=seed, horizontal_flip=True
        )
        return [b for _, b in zip(range(2), dataset.as_numpy_iterator())]

    first, again, other = first_batches(7), first_batches(7), first_batches(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["images"], b["images"])
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])
    assert not np.array_equal(first[0]["images"], other[0]["images"])


@PIPELINE_ONLY
def test_training_samples_one_caption_per_image_and_reshuffles():
    pixels = np.zeros((8, 20, 20, 3), "uint8")
    captions = [["red one", "blue two", "green three"]] * 8
    tokenizer = keras_clip.Tokenizer.from_corpus(
        ["red one blue two green three"], 20, context_length=8
    )
    dataset = data.image_text_dataset((pixels, captions), tokenizer, 16, 8, seed=0)
    epochs = [next(iter(dataset))["token_ids"].numpy() for _ in range(3)]
    seen = {tuple(row) for ids in epochs for row in ids}
    assert len(seen) == 3  # every caption gets picked, one per image per epoch
    assert all(len(ids) == 8 for ids in epochs)
    assert not all(np.array_equal(epochs[0], e) for e in epochs[1:])


@PIPELINE_ONLY
def test_in_memory_sources_arrays_lists_and_bytes(tokenizer):
    rng = np.random.default_rng(0)
    same_size = rng.integers(0, 255, (6, 24, 24, 3), dtype=np.uint8)
    mixed = [
        same_size[0],
        same_size[1][:20],
        same_size[2][..., 0],
        np.concatenate([same_size[3], same_size[3][..., :1]], -1),
    ]
    encoded = [tf.io.encode_png(image).numpy() for image in same_size[:3]]
    encoded.append(b"definitely not an image")
    captions = ["picture 1", "picture 2", "", None]
    for images in (list(same_size[:4]), mixed, encoded):
        dataset = data.image_text_dataset((images, captions), tokenizer, 16, 2, training=False)
        batch = list(dataset)
        assert sum(len(b["images"]) for b in batch) == 2
        counts = dataset.report.counts()
        assert counts["empty_caption"] == 1 and counts["missing_field"] == 1
    dataset = data.image_text_dataset(
        {"images": same_size, "captions": ["picture 1"] * 6}, tokenizer, 24, 6, training=False
    )
    images = next(iter(dataset))["images"].numpy()
    np.testing.assert_allclose(images, image_ops.normalize(same_size).numpy(), atol=1e-6)


@PIPELINE_ONLY
@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_comes_out_upright(orientation):
    pixels = np.zeros((24, 40, 3), "uint8")
    pixels[:12, :20] = (250, 20, 20)  # red top-left
    pixels[12:, 20:] = (20, 20, 250)  # blue bottom-right
    pixels[:12, 20:] = (20, 250, 20)  # green top-right
    encoded = image_folders.jpeg_bytes(pixels, orientation)
    assert int(image_ops.exif_orientation(tf.constant(encoded))) == orientation
    decoded = image_ops.decode_rgb(tf.constant(encoded)).numpy()
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(encoded))))
    assert decoded.shape == pixels.shape == reference.shape

    def quadrant_means(image):
        return np.array(
            [image[r : r + 12, c : c + 20].reshape(-1, 3).mean(0) for r in (0, 12) for c in (0, 20)]
        )

    np.testing.assert_allclose(quadrant_means(decoded), quadrant_means(pixels), atol=30)
    np.testing.assert_array_equal(decoded, reference)  # PIL's pixels, upright


@PIPELINE_ONLY
@pytest.mark.parametrize("options", [{"subsampling": 0}, {"subsampling": 2}, {"progressive": True}])
def test_jpeg_pixels_are_pils(options):
    """JPEGs decode to PIL's pixels, bit for bit (open_clip, Hugging Face and
    CLIP_benchmark read images with PIL); TensorFlow's default fast DCT
    was up to 9 levels off."""
    pixels = np.random.default_rng(0).integers(0, 256, (48, 40, 3)).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, **options)
    reference = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    decoded = image_ops.decode_rgb(tf.constant(buffer.getvalue())).numpy()
    np.testing.assert_array_equal(decoded, reference)


@PIPELINE_ONLY
def test_png_modes_decode_to_rgb(tmp_path):
    for index in range(2, 6):  # grayscale, RGBA, palette, 16-bit
        name = image_folders.save_good_image(str(tmp_path), index)
        decoded = image_ops.decode_rgb(tf.io.read_file(str(tmp_path / name))).numpy()
        reference = _reference_images(str(tmp_path), [name])[0]
        assert decoded.shape == (36, 44, 3) and decoded.dtype == np.uint8
        cropped = image_ops.normalize(image_ops.center_crop(decoded, IMAGE_SIZE))
        np.testing.assert_allclose(cropped.numpy(), reference, atol=0.1)


@PIPELINE_ONLY
def test_center_crop_is_close_to_pil_bicubic():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(pixels).resize((90, 60), Image.BILINEAR))
    ours = image_ops.center_crop(tf.constant(pixels), 40).numpy().astype(int)
    resized = Image.fromarray(pixels).resize((60, 40), Image.BICUBIC)
    pil = np.asarray(resized)[:, 10:50].astype(int)
    assert ours.shape == (40, 40, 3)
    assert np.abs(ours - pil).mean() < 2.0


@PIPELINE_ONLY
def test_horizontal_flip_swaps_left_and_right_in_the_caption():
    pixels = np.zeros((16, 16, 16, 3), "uint8")
    pixels[:, :, :8] = 255  # white on the left
    captions = ["white on the left"] * 16
    tokenizer = keras_clip.Tokenizer.from_corpus(
        ["white on the left right"] * 5, 60, context_length=16
    )
    assert not np.array_equal(*tokenizer(["white on the left", "white on the right"]))
    dataset = data.image_text_dataset(
        (pixels, captions),
        tokenizer,
        16,
        16,
        seed=0,
        horizontal_flip=True,
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
    )
    batch = next(iter(dataset))
    left_brighter = batch["images"][:, :, :8].numpy().mean((1, 2, 3)) > batch["images"][
        :, :, 8:
    ].numpy().mean((1, 2, 3))
    says_left = (batch["token_ids"].numpy() == tokenizer(["white on the left"])).all(1)
    np.testing.assert_array_equal(left_brighter, says_left)
    assert 0 < says_left.sum() < 16


@PIPELINE_ONLY
def test_swap_left_right_keeps_case_and_whole_words():
    swapped = image_ops.swap_left_right(
        tf.constant(["Left of the right cat, leftover rights", "RIGHT"])
    ).numpy()
    assert swapped[0] == b"Right of the left cat, leftover rights"
    assert swapped[1] == b"RIGHT"


def test_fit_runs_through_a_folder_and_reports_each_epoch(csv_folder, tokenizer):
    folder, expected = csv_folder
    train = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 8, seed=0)
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", vocabulary_size=tokenizer.vocabulary_size, context_length=16
    )
    model.compile()
    lines = []
    report = data.DataReportCallback(train, log=lines.append)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(train, epochs=2, callbacks=[report], verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert report.history == [expected["counts"]] * 2
    assert len(lines) == 2 and "3 unreadable_image" in lines[0]
    # What the log said is still there to read after fit.
    assert train.report.counts() == expected["counts"]
    # Neither "shuffle=True was passed" nor "Your input ran out of data".
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []


@PIPELINE_ONLY
def test_captions_cut_to_the_context_length_are_counted(tokenizer):
    captions = [" ".join(["a"] * n) for n in (3, 14, 15, 20)]  # "a": one token; 14 fit
    images = np.zeros((4, 8, 8, 3), "uint8")
    dataset = data.image_text_dataset((images, captions), tokenizer, 8, 2, training=False)
    token_ids = np.concatenate([b["token_ids"] for b in dataset.as_numpy_iterator()])
    assert (token_ids[1:, -1] == tokenizer.end_id).all()
    assert dataset.report.truncated_captions() == 2  # 15 and 20 tokens
    assert dataset.report.summary().endswith("; 2 captions cut to the context length")
    assert dataset.report.counts() == {reason: 0 for reason in data.report.REASONS}
    ids, truncated = tokenizer.tokenize_and_count(captions)
    np.testing.assert_array_equal(ids, token_ids)
    assert truncated.numpy().tolist() == [False, False, True, True]


@PIPELINE_ONLY
def test_bad_captions_files_and_arguments_raise_clear_errors(tmp_path, tokenizer):
    (tmp_path / "captions.csv").write_text("name,text\nimg.png,a cat\n")
    with pytest.raises(ValueError, match="captions.csv.*no image column"):
        data.image_text_dataset(str(tmp_path), tokenizer, 32, 2)
    with pytest.raises(ValueError, match="no image column 'photo'"):
        data.image_text_dataset(str(tmp_path), tokenizer, 32, 2, image_column="photo")
    with pytest.raises(ValueError, match="names no usable example.*missing_file"):
        data.image_text_dataset(str(tmp_path), tokenizer, 32, 2, image_column="name")
    with pytest.raises(ValueError, match="3 images but 2 captions"):
        data.image_text_dataset((np.zeros((3, 8, 8, 3), "uint8"), ["a", "b"]), tokenizer, 8, 1)
    with pytest.raises(ValueError, match="dtype float32"):
        data.image_text_dataset((np.zeros((3, 8, 8, 3), "float32"), ["a"] * 3), tokenizer, 8, 1)
    with pytest.raises(ValueError, match="fewer than batch_size=8"):
        data.image_text_dataset((np.zeros((3, 8, 8, 3), "uint8"), ["a"] * 3), tokenizer, 8, 8)
    with pytest.raises(ValueError, match="crop_scale"):
        data.image_text_dataset(
            (np.zeros((3, 8, 8, 3), "uint8"), ["a"] * 3), tokenizer, 8, 1, crop_scale=(0.5, 1.5)
        )
    with pytest.raises(FileNotFoundError, match="No such file or folder"):
        data.image_text_dataset(str(tmp_path / "does_not_exist"), tokenizer, 8, 1)
    (tmp_path / "sub").mkdir()
    with pytest.raises(FileNotFoundError, match="no captions.csv"):
        data.image_text_dataset(str(tmp_path / "sub"), tokenizer, 8, 1)


@pytest.mark.backend("tensorflow")
def test_counts_stay_exact_under_mirrored_strategy(csv_folder):
    import json
    import subprocess
    import sys

    folder, expected = csv_folder
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", "tests.distributed_data_check", folder],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and np.isfinite(report["loss"]).all()
    assert report["counts"] == [expected["counts"]] * 2


def test_a_resumed_epoch_sees_the_same_data_as_an_uninterrupted_run(shards, csv_folder, tokenizer):
    for source in (csv_folder[0], shards[0]):

        def build(source=source):
            return data.image_text_dataset(
                source, tokenizer, IMAGE_SIZE, 8, seed=5, horizontal_flip=True
            )

        uninterrupted = build()
        epoch0 = next(iter(uninterrupted))
        epoch1 = next(iter(uninterrupted))  # each new pass is the next epoch
        resumed = build()
        resumed.state.epoch.assign(1)  # what DataReportCallback does at epoch 1
        again = next(iter(resumed))
        np.testing.assert_array_equal(again["images"], epoch1["images"])
        np.testing.assert_array_equal(again["token_ids"], epoch1["token_ids"])
        assert not np.array_equal(epoch0["images"], epoch1["images"])


def test_keras_reports_the_mean_over_the_batches(tokenizer):
    # Regression: with drop_remainder=True and unknown cardinality, Keras
    # 3.15 reported 2/3 of the loss of a two-batch epoch (a phantom batch).
    from keras_clip.datasets import shapes

    train = shapes.load(32, 32, seed=0)
    dataset = data.image_text_dataset(
        (train["images"], train["captions"]), tokenizer, IMAGE_SIZE, 16, seed=0
    )
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", vocabulary_size=tokenizer.vocabulary_size, context_length=16
    )
    model.compile()
    dataset.state.epoch.assign(0)
    batches = list(dataset)
    per_batch = [model.evaluate(b, batch_size=16, verbose=0, return_dict=True) for b in batches]
    dataset.state.epoch.assign(0)  # the same pass again
    whole = model.evaluate(dataset, verbose=0, return_dict=True)
    assert len(batches) == 2
    for name in ("loss", "mi", "i2t_recall@1"):
        np.testing.assert_allclose(
            whole[name], np.mean([r[name] for r in per_batch]), rtol=1e-5, atol=1e-6
        )
