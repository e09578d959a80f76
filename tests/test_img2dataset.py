"""img2dataset 1.47 itself (not a fixture in its format) downloads a set
from a file server on 127.0.0.1, with a 404, a file that is not an image
and a truncated JPEG among the URLs; keras-clip reads each of its output
formats, metadata sidecars and all, and yields exactly the samples
img2dataset counts as successes."""

import csv
import glob
import io
import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

import keras_clip
from keras_clip import data
from tests import peer_tools

# tf.data only, whatever the Keras backend: once, in the TensorFlow lane.
pytestmark = pytest.mark.backend("tensorflow")
IMAGE_SIZE = 32
GOOD = 14
FORMATS = ("webdataset", "parquet", "files")


def _caption(index):
    return f"picture number {index}"


def _serve_set(folder):
    """Images of several sizes (PNG and JPEG) and three bad URLs; returns the
    url list rows (name, caption)."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(GOOD):
        pixels = rng.integers(0, 256, (24 + 3 * index, 40, 3)).astype("uint8")
        name = f"{index}.png" if index % 2 else f"{index}.jpg"
        Image.fromarray(pixels).save(folder / name)
        rows.append((name, _caption(index)))
    (folder / "not_an_image.jpg").write_text("this is no picture")
    whole = (folder / "0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    rows += [("missing.jpg", "a 404"), ("not_an_image.jpg", "no image"), ("truncated.jpg", "cut")]
    return rows


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """{format: output folder}, each written by the img2dataset command."""
    root = tmp_path_factory.mktemp("img2dataset")
    served = root / "served"
    served.mkdir()
    rows = _serve_set(served)
    outputs = {}
    with peer_tools.serve_folder(served) as base:
        with open(root / "urls.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["url", "caption"])
            writer.writerows([f"{base}/{name}", caption] for name, caption in rows)
        for output_format in FORMATS:
            outputs[output_format] = root / output_format
            peer_tools.run_peer(
                "img2dataset",
                *("--url_list", root / "urls.csv", "--input_format", "csv"),
                *("--url_col", "url", "--caption_col", "caption"),
                *("--output_format", output_format, "--output_folder", outputs[output_format]),
                *("--image_size", IMAGE_SIZE, "--number_sample_per_shard", 8),
                *("--processes_count", 1, "--thread_count", 4, "--timeout", 5, "--retries", 0),
                *("--enable_wandb", "False"),
                timeout=120,
            )
    return outputs


@pytest.fixture(scope="module")
def tokenizer():
    return keras_clip.Tokenizer.from_corpus(
        [_caption(index) for index in range(GOOD)], 200, context_length=8
    )


def _metadata_rows(folder):
    """img2dataset's own account of every URL: its metadata parquet files
    (the sidecars, or the parquet output itself)."""
    import pyarrow.parquet as pq

    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "*.parquet"))):
        rows += pq.read_table(path).to_pylist()
    return rows


def _written_images(folder, output_format):
    """{key: the image bytes img2dataset wrote}."""
    found = {}
    if output_format == "parquet":
        for row in _metadata_rows(folder):
            if row["jpg"] is not None:
                found[row["key"]] = row["jpg"]
    elif output_format == "webdataset":
        for path in glob.glob(os.path.join(folder, "*.tar")):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.name.endswith(".jpg"):
                        found[member.name[:-4]] = tar.extractfile(member).read()
    else:
        for path in glob.glob(os.path.join(folder, "*", "*.jpg")):
            with open(path, "rb") as f:
                found[os.path.basename(path)[:-4]] = f.read()
    return found


def test_img2dataset_counts_the_bad_urls_as_failures(downloads):
    for folder in downloads.values():
        statuses = {row["url"].rsplit("/", 1)[1]: row for row in _metadata_rows(folder)}
        assert statuses["missing.jpg"]["status"] == "failed_to_download"
        assert "404" in statuses["missing.jpg"]["error_message"]
        assert statuses["not_an_image.jpg"]["status"] == "failed_to_resize"
        assert all(statuses[f"{i}.{'png' if i % 2 else 'jpg'}"]["status"] == "success"
                   for i in range(GOOD))  # fmt: skip


@pytest.mark.parametrize(
    "output_format, spec",
    [(f, "folder") for f in FORMATS] + [(f, s) for f in FORMATS[:2] for s in ("glob", "braces")],
)
def test_every_success_is_read_and_nothing_else(downloads, tokenizer, output_format, spec):
    import tensorflow as tf

    from keras_clip.data import images as image_ops

    folder = str(downloads[output_format])
    stats = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(folder, "*_stats.json")))]
    successes = sum(s["successes"] for s in stats)
    assert successes >= GOOD and sum(s["count"] for s in stats) == GOOD + 3
    suffix = {"webdataset": ".tar", "parquet": ".parquet", "files": ""}[output_format]
    source = {
        "folder": folder,
        "glob": os.path.join(folder, f"*{suffix}"),
        "braces": os.path.join(folder, "{00000.." + f"{len(stats) - 1:05d}}}{suffix}"),
    }[spec]
    dataset = data.image_text_dataset(source, tokenizer, IMAGE_SIZE, 4, training=False)
    batches = list(dataset.as_numpy_iterator())
    token_ids = np.concatenate([b["token_ids"] for b in batches])
    images = np.concatenate([b["images"] for b in batches])
    assert len(token_ids) == successes
    # The same captions as img2dataset's successful rows, each once...
    rows = [row for row in _metadata_rows(folder) if row["status"] == "success"]
    expected = np.asarray(tokenizer([row["caption"] for row in rows]))
    by_ids = {tuple(ids): row for ids, row in zip(expected, rows)}
    assert sorted(map(tuple, token_ids)) == sorted(by_ids)
    # ...each with the image img2dataset wrote for it.
    written = _written_images(folder, output_format)
    for ids, image in zip(token_ids, images):
        encoded = written[by_ids[tuple(ids)]["key"]]
        pixels = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
        reference = image_ops.normalize(tf.constant(pixels)).numpy()
        np.testing.assert_allclose(image, reference, atol=1e-5)
    skipped = {reason: count for reason, count in dataset.report.counts().items() if count}
    # img2dataset's parquet output keeps each failed URL as a row without image.
    assert skipped == ({"missing_image": 3} if output_format == "parquet" else {})
