"""Web-scale sources: webdataset tar shards (read natively in tf.data) and
img2dataset's `files` and `tfrecord` outputs, with bad samples of every kind."""

import json
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip import data
from keras_clip.data import locations
from keras_clip.data import tar_shards
from tests import webdataset_shards

IMAGE_SIZE = 32
# tf.data code whatever the Keras backend: these run once, in the PyTorch
# lane (the suite's shortest); the tests that feed a model run on every backend.
PIPELINE_ONLY = pytest.mark.backend("torch")
REASONS = (
    "missing_image",
    "missing_caption",
    "truncated",
    "not_an_image",
    "unreadable_image",
    "empty_caption",
)


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ["picture of a white view split caption", *map(str, range(80))]
    return keras_clip.Tokenizer.from_corpus(corpus, 160, context_length=12)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("webdataset"))
    return folder, webdataset_shards.build_shards(folder)


def _collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    images = np.concatenate([b["images"] for b in batches])
    return images, np.concatenate([b["token_ids"] for b in batches])


def _expected_counts(expected):
    return {reason: expected.get(reason, 0) for reason in REASONS}


def _counts(dataset):
    counts = dataset.report.counts()
    return {reason: counts[reason] for reason in REASONS}


def _assert_exact_pairs(dataset, expected, tokenizer):
    images, token_ids = _collect(dataset)
    np.testing.assert_array_equal(token_ids, tokenizer([text for _, text in expected["pairs"]]))
    reference = webdataset_shards.reference_images(expected["pairs"], IMAGE_SIZE)
    np.testing.assert_allclose(images, reference, atol=1e-5)
    assert _counts(dataset) == _expected_counts(expected["counts"])


@PIPELINE_ONLY
@pytest.mark.parametrize("spec", ["folder", "braces", "glob", "list", "joined"])
def test_shards_yield_exactly_the_valid_pairs_and_count_the_rest(shards, tokenizer, spec):
    folder, expected = shards
    source = {
        "folder": folder,
        "braces": os.path.join(folder, "{00000..00003}.tar"),
        "glob": os.path.join(folder, "0000[0-3].tar"),
        "list": expected["paths"],
        "joined": "::".join(expected["paths"]),
    }[spec]
    dataset = data.image_text_dataset(source, tokenizer, IMAGE_SIZE, 16, training=False)
    _assert_exact_pairs(dataset, expected, tokenizer)


@PIPELINE_ONLY
def test_samples_match_the_webdataset_package_reader(shards):
    """The real reader on the untruncated shards gives the same complete
    samples (key, image bytes, caption); like keras-clip, it does not join a
    sample split over two shards (it starts a new sample at each shard)."""
    import webdataset

    folder, expected = shards
    theirs, split = [], []
    for sample in webdataset.WebDataset(expected["paths"][:3], shardshuffle=False):
        image = next((sample[e] for e in ("jpg", "png") if e in sample), None)
        if sample["__key__"] == "split":
            split.append(sorted(k for k in sample if not k.startswith("__")))
        if image is not None and "txt" in sample:
            theirs.append((sample["__key__"], image, sample["txt"]))
    ours = []
    for path in expected["paths"][:3]:
        samples, _ = tar_shards.read_tar_shard(tf.constant(path))
        for key, image, captions in zip(
            samples["key"].numpy(), samples["image"].numpy(), samples["captions"].to_list()
        ):
            ours.append((key.decode(), image, captions[0]))
    assert split == [["png"], ["txt"]]
    assert ours == theirs
    assert len(ours) == 3 * webdataset_shards.GOOD_PER_SHARD + 9  # good + 3x3 bad-but-complete


@PIPELINE_ONLY
def test_training_reads_every_valid_pair_once_per_epoch(shards, tokenizer):
    folder, expected = shards
    dataset = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 4, seed=0)
    _, token_ids = _collect(dataset)
    valid = len(expected["pairs"])
    assert len(token_ids) == valid // 4 * 4
    wanted = {tuple(row) for row in np.asarray(tokenizer([t for _, t in expected["pairs"]]))}
    assert {tuple(row) for row in token_ids} <= wanted
    assert len({tuple(row) for row in token_ids}) == len(token_ids)  # no pair twice
    assert _counts(dataset) == _expected_counts(expected["counts"])


@PIPELINE_ONLY
def test_tar_parsing_survives_headers_that_hide_in_data(tmp_path):
    """A member whose data holds a valid tar header (a tar in a tar) forces
    the header-by-header walk; the outer samples are still exact."""
    inner = tmp_path / "inner.tar"
    samples = [("a", {"png": webdataset_shards.png(1), "txt": b"one"})]
    webdataset_shards._write_tarfile(str(inner), samples, tarfile.USTAR_FORMAT)
    outer = [
        ("x", {"tar": inner.read_bytes(), "txt": b"holds a tar"}),
        ("b", {"png": webdataset_shards.png(2), "txt": b"two"}),
    ]
    path = str(tmp_path / "outer.tar")
    webdataset_shards._write_tarfile(path, outer, tarfile.USTAR_FORMAT)
    samples, skipped = tar_shards.read_tar_shard(tf.constant(path))
    assert samples["key"].numpy().tolist() == [b"b"]
    assert samples["captions"].to_list() == [[b"two"]]
    assert skipped.numpy().tolist() == [1, 0, 0]  # "x": no image member


@PIPELINE_ONLY
def test_a_corrupt_header_stops_the_shard_and_is_counted(tmp_path):
    path = str(tmp_path / "shard.tar")
    samples = [(f"{i}", {"png": webdataset_shards.png(i), "txt": b"caption"}) for i in range(3)]
    webdataset_shards._write_tarfile(path, samples, tarfile.USTAR_FORMAT)
    with tarfile.open(path) as tar:
        offset = tar.getmember("1.png").offset
    contents = bytearray(open(path, "rb").read())
    contents[offset + 148 : offset + 156] = b"0000000\0"  # a bad checksum
    open(path, "wb").write(bytes(contents))
    samples, skipped = tar_shards.read_tar_shard(tf.constant(path))
    assert samples["key"].numpy().tolist() == [b"0"]
    assert skipped.numpy().tolist() == [0, 0, 1]


@PIPELINE_ONLY
def test_json_captions_and_image_extensions_are_chosen_by_name(tmp_path, tokenizer):
    import webdataset

    path = str(tmp_path / "shard.tar")
    with webdataset.TarWriter(path) as writer:
        for i in range(4):
            members = {"__key__": f"k{i}", "json": {"caption": f"picture {i}"}}
            members["jpeg" if i % 2 else "webp"] = webdataset_shards.png(i)
            writer.write(members)
        writer.write({"__key__": "nofield", "json": {"other": "x"}, "jpeg": b"x"})
    source = data.read_source(path, image_column="jpeg", caption_column="json:caption")
    assert source.all_captions() == ["picture 1", "picture 3"]
    dataset = data.image_text_dataset(
        path,
        tokenizer,
        IMAGE_SIZE,
        8,
        training=False,
        image_column="jpeg;webp",
        caption_column="json:caption",
    )
    _, token_ids = _collect(dataset)
    np.testing.assert_array_equal(token_ids, tokenizer([f"picture {i}" for i in range(4)]))
    assert dataset.report.counts()["missing_caption"] == 1
    with pytest.raises(ValueError, match="json:FIELD"):
        data.read_source(path, caption_column="json:")


@PIPELINE_ONLY
def test_sample_counts_from_stats_sizes_or_one_scan(shards, tmp_path, monkeypatch):
    folder, expected = shards
    complete = 3 * webdataset_shards.GOOD_PER_SHARD + 9 + 12
    assert len(data.read_source(folder)) == complete
    calls = []
    original = tar_shards.read_tar_shard
    monkeypatch.setattr(
        tar_shards, "read_tar_shard", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    assert len(data.read_source(folder)) == complete and not calls  # memoised
    copy = tmp_path / "00000.tar"
    copy.write_bytes(open(expected["paths"][0], "rb").read())
    (tmp_path / "00000_stats.json").write_text(json.dumps({"successes": 17}))
    assert len(data.read_source(str(copy))) == 17
    (tmp_path / "00000_stats.json").unlink()
    (tmp_path / "sizes.json").write_text(json.dumps({"00000.tar": 23}))
    assert len(data.read_source(str(copy))) == 23 and not calls


@PIPELINE_ONLY
def test_img2dataset_files_layout(tmp_path, tokenizer):
    """With the metadata sidecars img2dataset writes beside each shard
    folder: they are not parquet data shards (they used to be taken for
    one and refused for having no image column)."""
    expected = webdataset_shards.build_img2dataset_files(str(tmp_path))
    assert (tmp_path / "00000.parquet").exists() and (tmp_path / "00000_stats.json").exists()
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 16, training=False)
    _assert_exact_pairs(dataset, expected, tokenizer)
    with pytest.raises(FileNotFoundError, match="only img2dataset's metadata files"):
        data.read_source(str(tmp_path / "*.parquet"))


@PIPELINE_ONLY
def test_img2dataset_tfrecord_features_found_or_named(tmp_path, tokenizer):
    """The schema of img2dataset's TFRecordSampleWriter, its metadata
    sidecar beside the shard (it used to be taken for a parquet shard)."""
    expected = webdataset_shards.build_img2dataset_tfrecord(str(tmp_path))
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 16, training=False)
    _assert_exact_pairs(dataset, expected, tokenizer)
    assert data.read_source(str(tmp_path)).num_images() == 20  # the stats' successes
    named = data.read_source(expected["path"], image_column="jpg", caption_column="key")
    assert named.all_captions()[:2] == ["00000", "00001"]
    with pytest.raises(ValueError, match=r"no caption feature 'title'.*'key', 'status', 'txt'"):
        data.read_source(expected["path"], caption_column="title")


@PIPELINE_ONLY
def test_img2dataset_parquet_rows_stream_by_row_group(tmp_path, tokenizer):
    expected = webdataset_shards.build_img2dataset_parquet(str(tmp_path))
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 4, training=False)
    _assert_exact_pairs(dataset, expected, tokenizer)
    source = data.read_source(str(tmp_path / "{00000..00001}.parquet"))
    assert source.kind == "parquet" and source.options["image_column"] == "jpg"
    # Counts: img2dataset's stats say 17 successes (the uncaptioned row
    # among them); without the stats, the rows with image bytes and a
    # caption (undecoded: the bad images and blank caption count too).
    assert source.num_images() == 17
    for stats in tmp_path.glob("*_stats.json"):
        stats.unlink()
    assert data.read_source(str(tmp_path)).num_images() == len(expected["pairs"]) + 3
    named = data.read_source(str(tmp_path), caption_column="url")
    assert named.all_captions()[0] == "http://example.invalid/0.jpg"
    with pytest.raises(ValueError, match=r"no caption column 'title'.*'key', 'txt'"):
        data.read_source(str(tmp_path), caption_column="title")
    # Training: every usable row once per epoch, in a shuffled shard order.
    train = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 5, seed=1)
    assert sum(len(batch["token_ids"]) for batch in train) == 10  # 13 usable rows
    # A shard cut short (no footer) is skipped and counted, the rest read.
    with open(expected["paths"][1], "rb") as f:
        (tmp_path / "00002.parquet").write_bytes(f.read()[:300])
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 4, training=False)
    assert len(_collect(dataset)[1]) == len(expected["pairs"])
    assert dataset.report.counts()["truncated"] == 1


@PIPELINE_ONLY
@pytest.mark.parametrize("output_format", ["webdataset", "tfrecord"])
def test_write_shards_round_trips_every_valid_pair(shards, tmp_path, tokenizer, output_format):
    folder, expected = shards
    written = data.write_shards(folder, str(tmp_path), output_format, shard_size=25)
    assert written["images"] == len(expected["pairs"]) + 9  # complete samples, read unchecked
    assert len(written["shards"]) == 4  # 81 samples, 25 per shard
    dataset = data.image_text_dataset(str(tmp_path), tokenizer, IMAGE_SIZE, 16, training=False)
    not_read = {reason: 0 for reason in REASONS}
    for reason in ("not_an_image", "unreadable_image", "empty_caption"):
        not_read[reason] = expected["counts"][reason]
    _assert_exact_pairs(dataset, {"pairs": expected["pairs"], "counts": not_read}, tokenizer)


@PIPELINE_ONLY
def test_brace_expansion_and_missing_shards():
    assert locations.expand_braces("s/{08..11}.tar") == [
        "s/08.tar",
        "s/09.tar",
        "s/10.tar",
        "s/11.tar",
    ]
    assert locations.expand_braces("{a,b}/{1..2}") == ["a/1", "a/2", "b/1", "b/2"]
    assert locations.expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        data.read_source("no-such-folder/{0..3}.tar")


# Each kind on one backend's lane (the readers are tf.data on all three;
# fit is what differs): together they cover every reader and backend.
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("webdataset", marks=pytest.mark.backend("tensorflow")),
        pytest.param("parquet", marks=pytest.mark.backend("jax")),
        pytest.param("tfrecord", marks=pytest.mark.backend("torch")),
        pytest.param("files", marks=pytest.mark.backend("torch")),
    ],
)
def test_fit_runs_on_shards(shards, tokenizer, tmp_path, kind):
    folder, expected = shards
    if kind != "webdataset":
        folder = str(tmp_path)
        expected = getattr(webdataset_shards, f"build_img2dataset_{kind}")(folder)
    train = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 8, seed=0)
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", vocabulary_size=tokenizer.vocabulary_size, context_length=12
    )
    model.compile()
    report = data.DataReportCallback(train, log=lambda line: None)
    history = model.fit(train, epochs=1, callbacks=[report], verbose=0)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    assert {r: report.history[0][r] for r in REASONS} == _expected_counts(expected["counts"])


# JAX only, to share the load between the suite's lanes (the commands are
# backend-neutral; the pipeline is TensorFlow code on every backend).
@pytest.mark.backend("jax")
def test_convert_then_train_from_img2dataset_style_shards(tmp_path, capsys):
    from keras_clip import cli
    from tests import image_folders

    folder = tmp_path / "photos"
    expected = image_folders.build_folder(str(folder), "csv")
    shards_dir = tmp_path / "shards"
    args = ["convert", str(folder), str(shards_dir), "--shard-size", "16"]
    assert cli.main(args) == 0
    written = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    good = len(data.read_source(str(folder)))  # images the rows name, before decoding
    assert written["images"] == good and written["shards"] == -(-good // 16)
    assert written["skipped"] == {
        k: v for k, v in expected["counts"].items() if k in ("missing_field", "missing_file") and v
    }
    last = f"{written['shards'] - 1:05d}"
    args = [
        "train",
        str(shards_dir / f"shard-{{00000..{last}}}.tar"),
        "--architecture",
        "tiny-vit",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--vocabulary-size",
        "100",
        "--context-length",
        "16",
        "--verbose",
        "0",
        "--output",
        str(tmp_path / "out"),
    ]
    assert cli.main(args) == 0
    report = json.loads((tmp_path / "out" / "train_report.json").read_text())
    counts = report["skipped_per_epoch"]["train"][0]
    assert np.isfinite(report["history"]["loss"]).all()
    source = data.read_source(str(folder))
    first_blank = sum(not captions[0].strip() for captions in source.captions)
    assert counts["empty_caption"] == first_blank  # the .txt holds an image's first caption
    for reason in ("unreadable_image", "not_an_image"):
        assert counts[reason] == expected["counts"][reason]


@PIPELINE_ONLY
def test_an_epoch_of_num_samples_and_resampled_shards(shards, tokenizer):
    folder, expected = shards
    stream = data.image_text_dataset(
        folder, tokenizer, IMAGE_SIZE, 8, seed=0, num_samples=200, resampled=True
    )
    assert int(stream.cardinality()) == 25  # Keras sees the epoch's length
    _, first = _collect(stream)
    _, second = _collect(stream)
    assert len(first) == len(second) == 200  # more than one pass (72 valid pairs)
    assert not np.array_equal(first, second)  # each epoch its own order
    wanted = {tuple(row) for row in np.asarray(tokenizer([t for _, t in expected["pairs"]]))}
    assert {tuple(row) for row in first} <= wanted
    # An epoch's passes (about 3 here) never draw the orders of the next
    # epoch's: epoch e's passes are keyed e * stride, e * stride + 1, ...
    callback = data.DataReportCallback(stream)
    for epoch_number in (0, 1):
        callback.on_epoch_begin(epoch_number)
        start = int(stream.state.epoch.numpy())
        assert start == epoch_number * stream.state.epoch_stride
        _collect(stream)
        assert 2 <= int(stream.state.epoch.numpy()) - start < 10
    epoch = tf.Variable(0, dtype=tf.int64)
    draws = data.ordering.epoch_permutation(4, 0, epoch, resampled=True)
    drawn = [int(index) for _, index in draws.take(4)]
    assert all(0 <= i < 4 for i in drawn)
    with pytest.raises(ValueError, match="resampled=True draws shards"):
        data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 8, training=False, resampled=True)
    with pytest.raises(ValueError, match="num_samples=4 needs"):
        data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 8, num_samples=4)


@PIPELINE_ONLY
def test_sources_mixed_with_weights(shards, tokenizer):
    from keras_clip.data import ordering

    epoch = tf.Variable(0, dtype=tf.int64)
    draws = ordering.epoch_permutation(4000, 0, epoch, resampled=[1.0, 3.0] + [0.0] * 3998)
    indices = np.array([int(i) for _, i in draws])
    assert set(indices) == {0, 1} and abs(np.mean(indices) - 0.75) < 0.03
    folder, expected = shards
    spec = f"{folder}/0000{{0,1}}.tar::{folder}/0000{{2,3}}.tar"
    assert data.read_source(spec).part_sizes == [2, 2]
    only_first = data.image_text_dataset(
        spec,
        tokenizer,
        IMAGE_SIZE,
        8,
        seed=0,
        resampled=True,
        source_weights=(1, 0),
        num_samples=160,
    )
    first_part = {tuple(tokenizer.tokenize([c])[0].numpy()) for i, c in expected["pairs"] if i < 40}
    seen = {tuple(t) for batch in only_first for t in batch["token_ids"].numpy()}
    assert len(seen) > 20 and seen <= first_part
    with pytest.raises(ValueError, match="one weight per part"):
        data.image_text_dataset(spec, tokenizer, IMAGE_SIZE, 8, resampled=True, source_weights=[1])
    with pytest.raises(ValueError, match="needs resampled=True"):
        data.image_text_dataset(spec, tokenizer, IMAGE_SIZE, 8, source_weights=[1, 1])
    from keras_clip.cli.train import _upsampling_factors

    assert _upsampling_factors("1::2.5") == [1.0, 2.5]
    with pytest.raises(ValueError, match="numbers joined by '::'"):
        _upsampling_factors("1,2")


@PIPELINE_ONLY
def test_workers_read_disjoint_shards_that_cover_the_source(shards, tokenizer):
    folder, expected = shards
    seen = []
    for context in (tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0), (1, 2)):
        dataset = data.image_text_dataset(
            folder, tokenizer, IMAGE_SIZE, 4, training=False, input_context=context
        )
        seen.append([tuple(row) for row in _collect(dataset)[1]])
    # Shards 0 and 2 (20 + 20 pairs) for worker 0; 1 and 3 (20 + 12) for worker 1.
    assert [len(s) for s in seen] == [40, 32]
    everything = [tuple(row) for row in np.asarray(tokenizer([t for _, t in expected["pairs"]]))]
    assert sorted(seen[0] + seen[1]) == sorted(everything)
    with pytest.raises(ValueError, match="worker 4 of 5 needs .* at least 5 shards"):
        data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 4, input_context=(4, 5))


@pytest.mark.backend("jax")
def test_multi_host_jax_reads_its_own_shards_by_default(shards, tokenizer, monkeypatch):
    import jax

    folder, _ = shards
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    train = data.image_text_dataset(folder, tokenizer, IMAGE_SIZE, 4, seed=0)
    assert "(worker 1 of 2)" in train.report.origin
    explicit = data.image_text_dataset(
        folder, tokenizer, IMAGE_SIZE, 4, seed=0, input_context=(1, 2)
    )
    for a, b in zip(train, explicit):
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])
