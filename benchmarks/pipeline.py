"""Input-pipeline throughput against training throughput, one JSON line.

Writes `--images` generated JPEGs (sides drawn from 224-320 px, smooth
content, quality 90, captions of 6-14 words) and a captions.csv to a
temporary folder, then measures:

- pipeline_images_per_second: `keras_clip.data.image_text_dataset` in
  training mode (read, decode, random resized crop to 224, flip, shuffle,
  tokenise, batch, normalise), batch `--batch`; the median of `--repeats`
  timed passes of `--batches` batches after one warm-up batch;
- the same for the same images as keras-clip TFRecord shards, webdataset
  tar shards, img2dataset-style TFRecords (features "jpg" and "txt") and
  img2dataset-style parquet (columns "jpg" and "txt", row groups of 100),
  `--shard-size` images per shard (`sources_images_per_second`), measured
  in rounds that run every source once (medians over rounds), and
  webdataset / TFRecord;
- train_pairs_per_second: the core model at the same image size
  (`--architecture`, default ViT-B-32 with a 77-token text tower) trained
  with `train_on_batch` on in-memory batches, the median of `--steps` steps
  after one warm-up step, on the current Keras backend;
- ratio = pipeline / training (target: at least 3), measured in the same
  run on the same machine.

    python benchmarks/pipeline.py [--tokenizer wordpiece|clip_bpe]
"""

import argparse
import csv
import json
import os
import statistics
import tempfile
import time

import numpy as np

WORDS = (
    "a photo of the small large red green blue dog cat bird car tree house "
    "on in at near under beside sitting running old new bright dark street "
    "park beach table window left right with two three people"
).split()


def write_folder(folder, count, seed=0):
    """Smooth random JPEGs with short captions; returns the folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        height, width = rng.integers(224, 321, size=2)
        coarse = rng.integers(0, 255, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((int(width), int(height)), Image.BICUBIC)
        name = f"image{index:05d}.jpg"
        image.save(os.path.join(folder, name), quality=90)
        caption = " ".join(rng.choice(WORDS, size=rng.integers(6, 15)))
        rows.append({"file": name, "caption": caption})
    with open(os.path.join(folder, "captions.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    return [row["caption"] for row in rows]


def clip_bpe_tokenizer(folder, captions):
    """A BPE over the caption words (CLIP's code path, a small merges list)."""
    from keras_clip import Tokenizer

    merges = []
    known = set()
    for word in sorted(set(" ".join(captions).split())):
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            merge = (symbols[0], symbols[1])
            if merge not in known:
                known.add(merge)
                merges.append(merge)
            symbols = [symbols[0] + symbols[1]] + symbols[2:]
    path = os.path.join(folder, "merges.txt")
    with open(path, "w") as f:
        f.write("#version: bench\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return Tokenizer.from_clip_bpe(path)


def write_sources(folder, shard_size):
    """The folder's images as shards of each kind: {name: source}."""
    import pyarrow
    import pyarrow.parquet
    import tensorflow as tf

    from keras_clip import data

    sources = {"folder": folder}
    for name in ("tfrecord", "webdataset"):
        output = os.path.join(folder, name)
        data.write_shards(folder, output, name, shard_size=shard_size)
        sources[name] = output
    output = os.path.join(folder, "img2dataset")
    os.makedirs(output)
    examples = data.read_source(folder)
    for first in range(0, len(examples), shard_size):
        path = os.path.join(output, f"{first // shard_size:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for index in range(first, min(first + shard_size, len(examples))):
                with open(examples.images[index], "rb") as f:
                    features = {"jpg": f.read(), "txt": examples.captions[index][0].encode()}
                feature = {
                    k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
                    for k, v in features.items()
                }
                record = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(record.SerializeToString())
    sources["img2dataset_tfrecord"] = output
    output = os.path.join(folder, "img2dataset_parquet")
    os.makedirs(output)
    for first in range(0, len(examples), shard_size):
        rows = range(first, min(first + shard_size, len(examples)))
        columns = {"jpg": [], "txt": [examples.captions[i][0] for i in rows]}
        for index in rows:
            with open(examples.images[index], "rb") as f:
                columns["jpg"].append(f.read())
        path = os.path.join(output, f"{first // shard_size:05d}.parquet")
        pyarrow.parquet.write_table(pyarrow.table(columns), path, row_group_size=100)
    sources["img2dataset_parquet"] = output
    return sources


def pipeline_rates(sources, tokenizer, args):
    """{name: median images/s}: rounds that time every source once, each on
    a fresh iterator (one warm-up batch, then `--batches` batches), so that
    no source's prefetching runs while another is timed."""
    from keras_clip import data

    datasets = {
        name: data.image_text_dataset(
            source, tokenizer, 224, args.batch, seed=0, horizontal_flip=True
        ).repeat()
        for name, source in sources.items()
    }
    rates = {name: [] for name in sources}
    for _ in range(args.repeats):
        for name, dataset in datasets.items():
            iterator = iter(dataset)
            next(iterator)
            start = time.perf_counter()
            for _ in range(args.batches):
                next(iterator)
            rates[name].append(args.batches * args.batch / (time.perf_counter() - start))
            del iterator
    return {name: statistics.median(values) for name, values in rates.items()}, rates


def training_rate(tokenizer, args):
    import keras

    import keras_clip

    model = keras_clip.CLIP.from_architecture(
        args.architecture,
        vocabulary_size=tokenizer.vocabulary_size,
        context_length=tokenizer.context_length,
    )
    model.compile()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.train_batch, 224, 224, 3)).astype("float32")
    token_ids = rng.integers(
        1, tokenizer.vocabulary_size - 1, (args.train_batch, tokenizer.context_length)
    ).astype("int32")
    token_ids[:, -1] = tokenizer.end_id
    batch = {"images": images, "token_ids": token_ids}
    model.train_on_batch(batch)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_on_batch(batch)
        times.append(time.perf_counter() - start)
    return args.train_batch / statistics.median(times), keras.backend.backend()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizer", choices=("wordpiece", "clip_bpe"), default="wordpiece")
    parser.add_argument("--architecture", default="ViT-B-32")
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--shard-size", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from keras_clip import Tokenizer

    with tempfile.TemporaryDirectory() as folder:
        captions = write_folder(folder, args.images)
        if args.tokenizer == "clip_bpe":
            tokenizer = clip_bpe_tokenizer(folder, captions)
        else:
            tokenizer = Tokenizer.from_corpus(captions, 2000, context_length=77)
        sources = write_sources(folder, args.shard_size)
        medians, rounds = pipeline_rates(sources, tokenizer, args)
    pipeline = medians["folder"]
    training, backend = training_rate(tokenizer, args)
    print(
        json.dumps(
            {
                "benchmark": "pipeline",
                "backend": backend,
                "cpu_count": os.cpu_count(),
                "image_size": 224,
                "tokenizer": args.tokenizer,
                "batch": args.batch,
                "pipeline_images_per_second": round(pipeline, 1),
                "shard_size": args.shard_size,
                "sources_images_per_second": {k: round(v, 1) for k, v in medians.items()},
                "rounds": {k: [round(v, 1) for v in values] for k, values in rounds.items()},
                "webdataset_over_tfrecord": round(medians["webdataset"] / medians["tfrecord"], 3),
                "parquet_over_tfrecord": round(
                    medians["img2dataset_parquet"] / medians["tfrecord"], 3
                ),
                "architecture": args.architecture,
                "train_batch": args.train_batch,
                "train_pairs_per_second": round(training, 2),
                "ratio": round(pipeline / training, 1),
                "target_ratio": 3,
            }
        )
    )


if __name__ == "__main__":
    main()
