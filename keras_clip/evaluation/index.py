"""Embed a collection once, search it many times (clip-retrieval's layout).

`embed_collection` writes, in parts of `part_size` images,

    OUT/img_emb/img_emb_{i}.npy          float32 (n_i, dim), L2-normalised
    OUT/text_emb/text_emb_{i}.npy        the same for each image's first
                                          caption (captioned sources only)
    OUT/metadata/metadata_{i}.parquet    image_path, caption, source_index

as clip-retrieval's `clip-retrieval inference` does, so its index builders
(autofaiss) read the output. Each part's files are written under temporary
names and renamed, the metadata last: a part exists when its metadata file
does. A run killed midway and started again keeps the finished parts and
goes on after the last image they hold, so the output equals an
uninterrupted run's.

`search_index` ranks the stored images against a query embedding exactly,
with faiss (`IndexFlatIP`) when it is installed, else with NumPy.

Example:

```python
embed_collection(model, tokenizer, "photos/", "photos_index/")
query = model.predict({"token_ids": tokenizer(["a red bicycle"])})["text_embeddings"][0]
for hit in search_index("photos_index/", query, k=5):
    print(hit["score"], hit["image_path"])
```
"""

import glob
import json
import os
import time
from collections import Counter

import numpy as np

from keras_clip.evaluation.retrieval import normalize_rows
from keras_clip.models.preprocessing import image_count
from keras_clip.models.preprocessing import images_for_model
from keras_clip.utils import ProgressBar

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
FOLDERS = ("img_emb", "text_emb", "metadata")


def _part_path(output, folder, part, suffix):
    return os.path.join(output, folder, f"{folder}_{part}{suffix}")


def finished_parts(output):
    """How many parts of `output` are complete (0, 1, ... in order)."""
    part = 0
    while os.path.exists(_part_path(output, "metadata", part, ".parquet")):
        part += 1
    return part


def _collection(source):
    """`Examples` of `source`; a folder of images without captions is read as
    images only (captioned False)."""
    from keras_clip.data import sources

    if isinstance(source, str) and os.path.isdir(source):
        try:
            return sources.read_source(source), True
        except FileNotFoundError:
            paths = sorted(
                os.path.join(directory, name)
                for directory, _, names in os.walk(source)
                for name in names
                if name.lower().endswith(IMAGE_SUFFIXES)
            )
            if not paths:
                raise FileNotFoundError(f"{source!r} has no images and no captions.") from None
            # The path stands in for the caption that screening looks at.
            captions = [[path] for path in paths]
            return sources.Examples("files", paths, captions, Counter(), source), False
    return sources.read_source(source), True


def _batches(examples, settings, batch_size, after_index):
    """Decoded batches {"image", "caption" (first one), "index", "path"} of
    the examples whose source index is above `after_index`."""
    import tensorflow as tf

    from keras_clip.data.decoding import decoded_elements
    from keras_clip.data.decoding import indexed_elements
    from keras_clip.data.report import DataReport
    from keras_clip.data.sources import SHARD_KINDS

    report = DataReport(examples.skipped, examples.origin)
    if examples.kind in SHARD_KINDS:
        elements = examples.read_shards(training=False, report=report)
        paths = None
    else:
        elements = indexed_elements(examples, 0, None)
        paths = examples.images if examples.kind == "files" else None
    elements = elements.filter(lambda e: e["index"] > after_index)
    elements = elements.map(lambda e: (e, tf.zeros([3], tf.int64)))
    decoded = decoded_elements(elements, report, examples.kind, settings)
    decoded = decoded.map(
        lambda e: {"image": e["image"], "caption": e["captions"][0], "index": e["index"]}
    )
    return decoded.batch(batch_size).prefetch(tf.data.AUTOTUNE), report, paths


def embed_collection(model, tokenizer, source, output, part_size=8192, batch_size=64, verbose=1):
    """Embeds every usable image (and its first caption) of `source`.

    Args:
        model: a `keras_clip.CLIP`.
        tokenizer: callable from strings to token ids.
        source: anything `keras_clip.data.read_source` reads, or a folder
            of images without captions (then no text embeddings).
        output: the folder to write (clip-retrieval's layout, see above);
            started again on the same folder, it resumes.
        part_size: images per part file, a multiple of `batch_size` (so
            that a resumed run encodes the same batches, hence the same
            bits, as an uninterrupted one).
        batch_size: images encoded at once.
        verbose: 0 silent, 1 progress bar and a closing line with images/s.

    Returns:
        dict: "images" (in the output), "parts", "images_per_second" (this
        run), "skipped" (this run's skipped samples by reason).
    """

    if part_size <= 0 or batch_size <= 0 or part_size % batch_size:
        raise ValueError(
            f"part_size ({part_size}) must be a positive multiple of batch_size ({batch_size})."
        )
    examples, captioned = _collection(source)
    for folder in FOLDERS if captioned else ("img_emb", "metadata"):
        os.makedirs(os.path.join(output, folder), exist_ok=True)
    part = finished_parts(output)
    after_index = -1
    if part:
        import pyarrow.parquet as pq

        last = pq.read_table(_part_path(output, "metadata", part - 1, ".parquet"))
        after_index = int(last.column("source_index")[-1].as_py())
    settings = {"preprocessing": model.image_preprocessing, "training": False}
    batches, report, paths = _batches(examples, settings, batch_size, after_index)
    pending = {"img_emb": [], "text_emb": [], "rows": []}
    progress = ProgressBar(unit_name="image", verbose=verbose)
    start, embedded = time.time(), 0
    for batch in batches.as_numpy_iterator():
        images = images_for_model(model, batch["image"])
        pending["img_emb"].append(model.predict_on_batch({"images": images})["image_embeddings"])
        captions = [c.decode("utf-8", errors="replace") for c in batch["caption"]]
        if captioned:
            token_ids = np.asarray(tokenizer(captions))
            pending["text_emb"].append(
                model.predict_on_batch({"token_ids": token_ids})["text_embeddings"]
            )
        for index, caption in zip(batch["index"], captions):
            path = paths[index] if paths is not None else f"{examples.origin}#{index}"
            pending["rows"].append((path, caption if captioned else None, int(index)))
        embedded += image_count(images)
        progress.add(image_count(images))
        while len(pending["rows"]) >= part_size:
            _write_part(output, part, pending, part_size)
            part += 1
    if pending["rows"]:
        _write_part(output, part, pending, len(pending["rows"]))
        part += 1
    progress.close()
    seconds = max(time.time() - start, 1e-9)
    total = sum(len(np.load(p, mmap_mode="r")) for p in _parts(output, "img_emb"))
    summary = {
        "images": total,
        "parts": part,
        "images_per_second": round(embedded / seconds, 1),
        "skipped": report.counts(),
    }
    with open(os.path.join(output, "embed_report.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if verbose:
        print(
            f"embedded {embedded} images in {seconds:.1f} s ({summary['images_per_second']} "
            f"images/s); {output} holds {total} in {part} parts"
        )
    return summary


def _write_part(output, part, pending, count):
    """Writes the first `count` pending rows as part `part`, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def take(name):
        stacked = np.concatenate(pending[name]) if pending[name] else None
        if stacked is None:
            return None
        pending[name] = [stacked[count:]] if len(stacked) > count else []
        return normalize_rows(stacked[:count])

    rows, pending["rows"] = pending["rows"][:count], pending["rows"][count:]
    for name in ("img_emb", "text_emb"):
        embeddings = take(name)
        if embeddings is not None:
            final = _part_path(output, name, part, ".npy")
            with open(final + ".tmp", "wb") as f:
                np.save(f, embeddings)
            os.replace(final + ".tmp", final)
    table = pa.table(
        {
            "image_path": [r[0] for r in rows],
            "caption": [r[1] for r in rows],
            "source_index": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    final = _part_path(output, "metadata", part, ".parquet")
    pq.write_table(table, final + ".tmp")
    os.replace(final + ".tmp", final)


def _parts(output, folder):
    found = glob.glob(os.path.join(output, folder, f"{folder}_*.npy"))
    return sorted(found, key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0]))[
        : finished_parts(output)
    ]


def search_index(output, query, k=5, modality="image", use_faiss=None):
    """The k stored items nearest to `query` (an embedding), best first.

    Args:
        output: a folder `embed_collection` wrote.
        query: float (dim,), a text or image embedding.
        k: how many to return.
        modality: "image" (search img_emb) or "text" (text_emb).
        use_faiss: True, False, or None (faiss when it imports).

    Returns:
        list of dicts: "rank", "score" (cosine similarity), "image_path",
        "caption", "source_index".
    """
    import pyarrow.parquet as pq

    folder = {"image": "img_emb", "text": "text_emb"}.get(modality)
    if folder is None:
        raise ValueError(f"modality must be 'image' or 'text'; got {modality!r}.")
    files = _parts(output, folder)
    if not files:
        raise FileNotFoundError(f"No {folder} parts in {output!r}; run `keras-clip embed` first.")
    embeddings = np.concatenate([np.load(p) for p in files])
    query = normalize_rows(np.asarray(query, "float32").reshape(1, -1))
    if query.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"The query has {query.shape[1]} dimensions; the index has {embeddings.shape[1]}."
        )
    k = min(k, len(embeddings))
    if use_faiss is None:
        try:
            import faiss  # noqa: F401

            use_faiss = True
        except ImportError:
            use_faiss = False
    if use_faiss:
        import faiss

        index = faiss.IndexFlatIP(embeddings.shape[1])
        index.add(embeddings)
        scores, found = index.search(query, k)
        scores, found = scores[0], found[0]
    else:
        all_scores = embeddings @ query[0]
        found = np.argsort(-all_scores, kind="stable")[:k]
        scores = all_scores[found]
    metadata = [
        pq.read_table(_part_path(output, "metadata", i, ".parquet")).to_pylist()
        for i in range(len(files))
    ]
    rows = [row for part in metadata for row in part]
    return [
        {"rank": rank + 1, "score": float(score), **rows[int(i)]}
        for rank, (i, score) in enumerate(zip(found, scores))
    ]
