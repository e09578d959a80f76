"""`keras-clip embed` and `search`: clip-retrieval's layout, resume after a
kill to the same files, and exact search against known nearest items."""

import os
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.data import load_images
from keras_clip.evaluation.index import search_index
from keras_clip.evaluation.retrieval import normalize_rows
from keras_clip.models.preprocessing import images_for_model
from tests import evaluation_sets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 26


def _captioned_folder(folder):
    """img2dataset's `files` layout: NNN.png beside NNN.txt, plus a file
    that is not an image; returns the good paths and captions in order."""
    images, labels = evaluation_sets.shapes_of(evaluation_sets.CLASSES, COUNT)
    os.makedirs(folder)
    paths, captions = [], []
    for index, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(folder, f"{index:03d}.png")
        with open(path, "wb") as f:
            f.write(evaluation_sets._encoded(image, "PNG"))
        caption = f"a photo of a {evaluation_sets.CLASSES[label]}."
        with open(os.path.join(folder, f"{index:03d}.txt"), "w") as f:
            f.write(caption)
        paths.append(path)
        captions.append(caption)
    with open(os.path.join(folder, "013b.png"), "wb") as f:
        f.write(b"not a picture")
    with open(os.path.join(folder, "013b.txt"), "w") as f:
        f.write("a broken file.")
    return paths, captions


def _files(output):
    found = {}
    for directory, _, names in os.walk(output):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, output)
            if name.endswith(".npy"):
                found[relative] = np.load(path)
            elif name.endswith(".parquet"):
                found[relative] = pq.read_table(path).to_pylist()
    return found


def _kill(args):
    command = [sys.executable, "-m", "tests.embed_kill", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.backend("torch")
def test_embed_killed_and_resumed_writes_the_same_files(tmp_path):
    paths, captions = _captioned_folder(str(tmp_path / "photos"))
    common = ["--part-size", "8", "--batch-size", "4"]
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    assert cli.main(["embed", str(tmp_path / "photos"), whole, *common]) == 0
    for kill in ("1:half", "2:after"):
        done = _kill([kill, "embed", str(tmp_path / "photos"), resumed, *common])
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # The half-written part 1 left embeddings but no metadata: not a part.
    assert cli.main(["embed", str(tmp_path / "photos"), resumed, *common]) == 0
    expected, found = _files(whole), _files(resumed)
    assert sorted(found) == sorted(expected)
    assert sorted(expected)[0] == "img_emb/img_emb_0.npy" and len(expected) == 12  # 4 parts x 3
    for name, value in expected.items():
        if name.endswith(".npy"):
            np.testing.assert_array_equal(found[name], value, err_msg=name)
        else:
            assert found[name] == value, name
    rows = [row for i in range(4) for row in expected[f"metadata/metadata_{i}.parquet"]]
    assert [row["image_path"] for row in rows] == paths
    assert [row["caption"] for row in rows] == captions
    assert not [n for n in os.listdir(os.path.join(resumed, "metadata")) if n.endswith(".tmp")]


@pytest.mark.backend("torch")  # backend-neutral; one lane
def test_search_returns_the_known_nearest_images(tmp_path, capsys):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    paths, _ = _captioned_folder(str(tmp_path / "photos"))
    os.remove(str(tmp_path / "photos" / "013b.txt"))
    for path in paths:  # a folder of bare images: no captions, no text_emb
        os.remove(path[:-4] + ".txt")
    output = str(tmp_path / "index")
    assert (
        cli.main(
            ["embed", str(tmp_path / "photos"), output, "--part-size", "16", "--batch-size", "8"]
        )
        == 0
    )
    assert not os.path.exists(os.path.join(output, "text_emb"))
    images = images_for_model(model, load_images(paths, 64))
    stored = normalize_rows(model.predict({"images": images}, verbose=0)["image_embeddings"])
    query = model.predict({"token_ids": tokenizer(["a photo of a red circle."])}, verbose=0)
    query = normalize_rows(query["text_embeddings"])[0]
    nearest = np.argsort(-(stored @ query), kind="stable")[:5]
    for use_faiss in (False, True):
        hits = search_index(output, query, k=5, use_faiss=use_faiss)
        assert [hit["image_path"] for hit in hits] == [paths[i] for i in nearest]
        np.testing.assert_allclose(
            [hit["score"] for hit in hits], (stored @ query)[nearest], atol=1e-5
        )
    # An image as the query finds itself first.
    capsys.readouterr()
    assert cli.main(["search", output, paths[7], "-k", "3"]) == 0
    first = capsys.readouterr().out.splitlines()[0].split()
    assert first[0] == "1" and first[2] == paths[7] and float(first[1]) > 0.999
    with pytest.raises(ValueError, match="multiple of batch_size"):
        from keras_clip.evaluation.index import embed_collection

        embed_collection(model, tokenizer, str(tmp_path / "photos"), output, 10, 4)
