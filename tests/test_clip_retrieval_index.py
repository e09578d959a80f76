"""`keras-clip embed` writes what clip-retrieval's own tools take: autofaiss
2.18 (clip-retrieval's indexer, run as `clip-retrieval index` runs it)
builds image and text indices from its parts, and a query answered through
them and the metadata parquet files, as clip-retrieval's back end reads
them, gives `keras-clip search`'s top k. 13 parts, so that the sorted file
names (img_emb_10 before img_emb_2) are not the numeric order."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.cli.search import query_embedding
from tests import peer_tools
from tests.test_embeddings import _captioned_folder

# keras-clip's side is backend-neutral NumPy and files: once.
pytestmark = pytest.mark.backend("tensorflow")
K = 6


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_retrieval")
    paths, _ = _captioned_folder(str(root / "photos"))
    embedded = root / "embedded"
    arguments = ["embed", str(root / "photos"), str(embedded), "--part-size", "2"]
    assert cli.main([*arguments, "--batch-size", "2"]) == 0
    for modality, folder in (("image", "img_emb"), ("text", "text_emb")):
        peer_tools.run_peer(
            "autofaiss",
            *("build_index", "--embeddings", embedded / folder),
            *("--index_path", root / f"{modality}.index"),
            *("--index_infos_path", root / f"{modality}.json", "--metric_type", "ip"),
            *("--max_index_memory_usage", "1G", "--current_memory_available", "2G"),
        )
    return root, paths


def _peer_query(root, modality, query, k):
    np.save(root / "query.npy", query)
    printed = peer_tools.run_peer(
        "python",
        *(peer_tools.REPOSITORY + "/tests/clip_retrieval_query.py", root / f"{modality}.index"),
        *(root / "embedded" / "metadata", root / "query.npy", k),
    )
    return json.loads(printed.strip().splitlines()[-1])


@pytest.mark.parametrize("modality", ["image", "text"])
@pytest.mark.parametrize("query", ["a photo of a red circle.", "image:7"])
def test_the_autofaiss_index_answers_as_keras_clip_search(indexed, capsys, modality, query):
    root, paths = indexed
    if query.startswith("image:"):
        query = paths[int(query[6:])]
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    theirs = _peer_query(root, modality, query_embedding(model, tokenizer, query), K)
    capsys.readouterr()
    command = ["search", str(root / "embedded"), query, "-k", str(K), "--modality", modality]
    assert cli.main(command) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    ours = [line.split(maxsplit=3) for line in lines]
    assert len(theirs) == len(ours) == K
    np.testing.assert_allclose([h["score"] for h in theirs], [float(o[1]) for o in ours], atol=2e-4)
    if modality == "image":
        assert [h["image_path"] for h in theirs] == [o[2] for o in ours]
    else:  # captions repeat (one per class): equal captions tie, in any order
        assert [h["caption"] for h in theirs] == [json.loads(o[3].replace("'", '"')) for o in ours]


def test_the_metadata_has_clip_retrievals_columns(indexed):
    root, paths = indexed
    table = pq.read_table(root / "embedded" / "metadata" / "metadata_10.parquet")
    assert {"image_path", "caption"} <= set(table.column_names)
    infos = json.loads((root / "image.json").read_text())
    assert infos["nb vectors"] == len(paths)
