"""Queries a faiss index that autofaiss built from `keras-clip embed`'s
output, the way clip-retrieval's back end does: the index's top k, each id
looked up in the metadata parquet files concatenated in sorted name order
(its metadata providers' order). Runs in the peer environment
(tests/peer-tools.txt), which has faiss and pandas but not keras-clip:

    python clip_retrieval_query.py INDEX METADATA_FOLDER QUERY.npy K

Prints the hits as one JSON list: id, score, image_path, caption.
"""

import glob
import json
import os
import sys

import faiss
import numpy as np
import pandas as pd


def main(index_path, metadata_folder, query_path, k):
    index = faiss.read_index(index_path)
    query = np.load(query_path).astype("float32").reshape(1, -1)
    query /= np.linalg.norm(query)
    scores, ids = index.search(query, int(k))
    paths = sorted(glob.glob(os.path.join(metadata_folder, "*.parquet")))
    metadata = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    hits = []
    for score, found in zip(scores[0], ids[0]):
        row = metadata.iloc[int(found)]
        hits.append(
            {
                "id": int(found),
                "score": float(score),
                "image_path": row["image_path"],
                "caption": row["caption"],
            }  # fmt: skip
        )
    print(json.dumps(hits))


if __name__ == "__main__":
    main(*sys.argv[1:])
    # The answer is printed: leave without running the C++ static destructors.
    # One CI run in about ten aborted at exit ("terminate called without an
    # active exception", SIGABRT) after printing the right hits, a thread of
    # the native libraries (faiss / pyarrow) still joinable at teardown.
    sys.stdout.flush()
    os._exit(0)
