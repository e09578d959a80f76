"""Builds webdataset tar shards and img2dataset-shaped outputs with a known
share of bad samples.

Shards are written by the real `webdataset` package's `TarWriter` and by
Python's `tarfile` in PAX and GNU formats (long member names take a PAX
`path=` record or a `././@LongLink` member). Each holds good PNG samples
plus one of each bad kind: a caption without an image, an image without a
caption, bytes that are no image, a JPEG cut in half, an empty caption.
Across shards there are also a nested tar as a sample's "image", a sample
split over two shards, and a shard cut off in the middle of a member.
"""

import io
import json
import os
import tarfile

import numpy as np
from PIL import Image

from tests.image_folders import _image

GOOD_PER_SHARD = 20
LONG_FOLDER = "a-folder-name-long-enough-that-the-member-path-needs-more-than-100-bytes/" * 2


def png(index):
    buffer = io.BytesIO()
    Image.fromarray(_image(index)).save(buffer, format="PNG")
    return buffer.getvalue()


def half_jpeg(index):
    buffer = io.BytesIO()
    Image.fromarray(_image(index)).save(buffer, format="JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def caption(index):
    return f"picture {index} of a white view"


def _bad_samples(prefix):
    """(key, {extension: bytes}) for one of each bad kind, and their counts."""
    samples = [
        (f"{prefix}bad0", {"txt": b"no image here"}),
        (f"{prefix}bad1", {"png": png(900)}),
        (f"{prefix}bad2", {"jpg": b"this is not an image", "txt": b"text file"}),
        (f"{prefix}bad3", {"jpg": half_jpeg(901), "txt": b"truncated"}),
        (f"{prefix}bad4", {"png": png(902), "txt": b"   "}),
    ]
    counts = {
        "missing_image": 1,
        "missing_caption": 1,
        "not_an_image": 1,
        "unreadable_image": 1,
        "empty_caption": 1,
    }
    return samples, counts


def _good_samples(first, folder=""):
    return [
        (f"{folder}{index:06d}", {"png": png(index), "txt": caption(index).encode()})
        for index in range(first, first + GOOD_PER_SHARD)
    ]


def _write_tarfile(path, samples, tar_format):
    with tarfile.open(path, "w", format=tar_format) as tar:
        for key, members in samples:
            for extension, payload in members.items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size, info.mtime = len(payload), 1700000000.25  # PAX for a float
                tar.addfile(info, io.BytesIO(payload))


def _nested_tar():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("inner.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


def build_shards(folder):
    """Writes shards 00000-00003.tar; returns {"pairs": [(index, caption)],
    "counts": skipped by reason, "paths": shard paths}."""
    import webdataset

    counts = {"missing_image": 0, "missing_caption": 0, "not_an_image": 0}
    counts.update({"unreadable_image": 0, "empty_caption": 0, "truncated": 0})
    pairs = []

    def add_bad(samples, prefix):
        bad, bad_counts = _bad_samples(prefix)
        for reason, count in bad_counts.items():
            counts[reason] += count
        return samples[:7] + bad + samples[7:]

    paths = [os.path.join(folder, f"{shard:05d}.tar") for shard in range(4)]
    # Shard 0: the webdataset package's own writer.
    samples = add_bad(_good_samples(0), "w")
    with webdataset.TarWriter(paths[0]) as writer:
        for key, members in samples:
            writer.write({"__key__": key, **members})
    pairs += [(i, caption(i)) for i in range(0, GOOD_PER_SHARD)]
    # Shard 1: PAX headers, long paths, a nested tar, a sample split with shard 2.
    samples = add_bad(_good_samples(GOOD_PER_SHARD, LONG_FOLDER), "p")
    samples.append(("nested", {"tar": _nested_tar(), "txt": b"a tar inside"}))
    samples.append(("split", {"png": png(903)}))
    _write_tarfile(paths[1], samples, tarfile.PAX_FORMAT)
    counts["missing_image"] += 2  # the nested tar, and the split sample's caption
    counts["missing_caption"] += 1  # the split sample's image
    pairs += [(i, caption(i)) for i in range(GOOD_PER_SHARD, 2 * GOOD_PER_SHARD)]
    # Shard 2: GNU long names.
    samples = [("split", {"txt": b"split caption"})]
    samples += add_bad(_good_samples(2 * GOOD_PER_SHARD, LONG_FOLDER), "g")
    _write_tarfile(paths[2], samples, tarfile.GNU_FORMAT)
    pairs += [(i, caption(i)) for i in range(2 * GOOD_PER_SHARD, 3 * GOOD_PER_SHARD)]
    # Shard 3: cut in the middle of the 13th sample's image.
    first = 3 * GOOD_PER_SHARD
    _write_tarfile(paths[3], _good_samples(first), tarfile.PAX_FORMAT)
    with tarfile.open(paths[3]) as tar:
        member = tar.getmember(f"{first + 12:06d}.png")
    with open(paths[3], "r+b") as f:
        f.truncate(member.offset_data + member.size // 2)
    counts["truncated"] += 1
    pairs += [(i, caption(i)) for i in range(first, first + 12)]
    for path in paths:  # img2dataset's metadata beside each of its .tar shards
        write_metadata_sidecar(path[: -len(".tar")], [f"{i:06d}" for i in range(4)], stats=False)
    return {"pairs": pairs, "counts": counts, "paths": paths}


def write_metadata_sidecar(stem, keys, stats=True):
    """What img2dataset writes beside each shard by default (1.47, seen in
    a real run): `STEM.parquet` with one metadata row per sample (no image
    column) and, with `stats`, `STEM_stats.json` counting `keys`."""
    import pyarrow
    import pyarrow.parquet as parquet

    columns = {
        "caption": [f"caption {key}" for key in keys],
        "url": [f"http://127.0.0.1/{key}.jpg" for key in keys],
        "key": list(keys),
        "status": ["success"] * len(keys),
        "error_message": [None] * len(keys),
        "width": [32] * len(keys),
        "height": [32] * len(keys),
    }
    parquet.write_table(pyarrow.table(columns), stem + ".parquet")
    if stats:
        with open(stem + "_stats.json", "w") as f:
            json.dump({"count": len(keys), "successes": len(keys)}, f)


def build_img2dataset_files(folder):
    """img2dataset's `files` output: `00000/000000001.png` with `.txt` and
    `.json` beside it and the shard's metadata `00000.parquet` and
    `00000_stats.json` beside the folder, plus an image without a caption, a
    caption without an image, a .jpg that is no image, half a JPEG and a
    blank caption; returns {"pairs", "counts"}."""
    pairs = []
    for index in range(24):
        subfolder = os.path.join(folder, f"{index // 10:05d}")
        os.makedirs(subfolder, exist_ok=True)
        stem = os.path.join(subfolder, f"{index:09d}")
        with open(stem + ".png", "wb") as f:
            f.write(png(index))
        with open(stem + ".txt", "w") as f:
            f.write(caption(index))
        with open(stem + ".json", "w") as f:
            json.dump({"key": f"{index:09d}", "caption": caption(index)}, f)
        pairs.append((index, caption(index)))
    with open(os.path.join(folder, "00000", "lonely.png"), "wb") as f:
        f.write(png(904))
    with open(os.path.join(folder, "00001", "lonely.txt"), "w") as f:
        f.write("a caption without its image")
    bad = {
        "notimage": (b"plain text", "x"),
        "half": (half_jpeg(905), "y"),
        "blank": (png(906), " "),
    }
    for stem, (image, text) in bad.items():
        with open(os.path.join(folder, "00002", f"{stem}.jpg"), "wb") as f:
            f.write(image)
        with open(os.path.join(folder, "00002", f"{stem}.txt"), "w") as f:
            f.write(text)
    for shard in range(3):
        write_metadata_sidecar(
            os.path.join(folder, f"{shard:05d}"), [f"{i:09d}" for i in range(shard * 10, 24)]
        )
    counts = {"missing_image": 1, "missing_caption": 1, "not_an_image": 1}
    counts.update({"unreadable_image": 1, "empty_caption": 1})
    return {"pairs": pairs, "counts": counts}


def build_img2dataset_tfrecord(folder):
    """img2dataset's `tfrecord` output with the schema its
    `TFRecordSampleWriter` (1.47) writes: bytes features "key", "jpg" (named
    by the output format; PNG bytes here) and "txt", then every metadata
    column as a feature of its type (str as bytes, None as b"", int as
    int64), with the metadata sidecar `00000.parquet` (failed rows too) and
    `00000_stats.json`. Its real output cannot be made here: the writer
    needs tensorflow_io, which is not built for this TensorFlow. One
    record's bytes are no image, one is half a JPEG, one caption is empty.
    Returns {"pairs", "counts", "path"}."""
    import pyarrow
    import pyarrow.parquet as parquet
    import tensorflow as tf

    def feature(value):
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        value = b"" if value is None else value
        value = value.encode() if isinstance(value, str) else value
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    path = os.path.join(folder, "00000.tfrecord")
    pairs, metadata = [], []
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(22):
            text = caption(index) if index != 9 else ""
            meta = {
                "caption": text,
                "url": f"http://127.0.0.1/{index}.jpg",
                "key": f"{index:05d}",
                "status": "success" if index < 20 else "failed_to_download",
                "error_message": None if index < 20 else "HTTP Error 404: File not found",
                "width": 32 if index < 20 else None,
                "height": 32 if index < 20 else None,
                "exif": "{}" if index < 20 else None,
            }
            metadata.append(meta)
            if index >= 20:  # failed: a metadata row, no record
                continue
            image = {5: b"not an image", 13: half_jpeg(13)}.get(index, png(index))
            features = {"key": feature(meta["key"]), "jpg": feature(image), "txt": feature(text)}
            features.update({name: feature(value) for name, value in meta.items()})
            record = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(record.SerializeToString())
            if index not in (5, 9, 13):
                pairs.append((index, caption(index)))
    parquet.write_table(pyarrow.Table.from_pylist(metadata), os.path.join(folder, "00000.parquet"))
    with open(os.path.join(folder, "00000_stats.json"), "w") as f:
        json.dump({"count": 22, "successes": 20, "failed_to_download": 2}, f)
    counts = {"not_an_image": 1, "unreadable_image": 1, "empty_caption": 1}
    return {"pairs": pairs, "counts": counts, "path": path}


def build_img2dataset_parquet(folder, with_stats=True):
    """img2dataset's `parquet` output: shards 00000 and 00001.parquet,
    columns "key", "txt", "url", "status" and "jpg" (PNG bytes here; null
    where the download failed), in row groups of 4; one row without a
    caption, one of bytes that are no image, one of a JPEG cut in half,
    one blank caption. Returns {"pairs", "counts", "paths"}."""
    import pyarrow
    import pyarrow.parquet as parquet

    pairs, paths = [], []
    counts = {"missing_image": 0, "missing_caption": 0}
    bad_images = {5: (b"not an image", "not_an_image"), 8: (half_jpeg(8), "unreadable_image")}
    counts.update({"not_an_image": 0, "unreadable_image": 0, "empty_caption": 0})
    for shard in range(2):
        rows = {"key": [], "txt": [], "url": [], "status": [], "jpg": []}
        for index in range(shard * 10, shard * 10 + 10):
            failed, uncaptioned, blank = index % 7 == 3, index == 12, index == 15
            text = None if uncaptioned else "   " if blank else caption(index)
            image, reason = bad_images.get(index, (png(index), None))
            rows["key"].append(f"{index:09d}")
            rows["txt"].append(text)
            rows["url"].append(f"http://example.invalid/{index}.jpg")
            rows["status"].append("failed_to_download" if failed else "success")
            rows["jpg"].append(None if failed else image)
            if failed:
                counts["missing_image"] += 1
            elif uncaptioned:
                counts["missing_caption"] += 1
            elif reason or blank:
                counts[reason or "empty_caption"] += 1
            else:
                pairs.append((index, caption(index)))
        path = os.path.join(folder, f"{shard:05d}.parquet")
        parquet.write_table(pyarrow.table(rows), path, row_group_size=4)
        paths.append(path)
        if with_stats:
            with open(os.path.join(folder, f"{shard:05d}_stats.json"), "w") as f:
                successes = sum(status == "success" for status in rows["status"])
                json.dump({"count": 10, "successes": successes}, f)
    return {"pairs": pairs, "counts": counts, "paths": paths}


def reference_images(pairs, size):
    """The evaluation pipeline's images for `pairs`: PNG decode, centre
    crop, normalise (the pipeline's own ops, on PIL's pixels)."""
    import tensorflow as tf

    from keras_clip.data import images as image_ops

    result = []
    for index, _ in pairs:
        pixels = np.asarray(Image.open(io.BytesIO(png(index))).convert("RGB"))
        cropped = image_ops.center_crop(tf.constant(pixels), size)
        result.append(image_ops.normalize(cropped).numpy())
    return np.stack(result)
