"""Reads the image-caption collections users already have.

A source is one of:
- in memory: `(images, captions)` or `{"images": ..., "captions": ...}`,
  images as a uint8 array (N, H, W[, C]), a list of uint8 arrays or a list
  of encoded image bytes; each caption a string or a list of strings;
- a folder with `captions.csv` or `captions.jsonl` (or the path of such a
  file): one row per image-caption pair, or in JSONL a list of captions;
  image paths are relative to the captions file's folder;
- TFRecord shards written by `keras_clip.data.write_tfrecords`: a folder of
  `*.tfrecord` files, a glob pattern or a list of shard paths;
- webdataset tar shards (img2dataset's and open_clip's format; see
  `keras_clip.data.tar_shards`): a folder of `*.tar` files, a glob, brace
  notation (`shards/{00000..00099}.tar`), several joined by "::", or a list;
- img2dataset's parquet output (see `keras_clip.data.parquet_shards`):
  `*.parquet` files with image bytes and captions in columns, named the
  same ways as tar shards;
- img2dataset's `files` output: a folder (searched recursively) of images,
  each beside a same-name `.txt` caption (`00000/000000001.jpg` and
  `00000/000000001.txt`).

Shard lists go through `tf.io.gfile`, so `gs://` paths work.

Rows that cannot be used are skipped and counted here (missing fields,
malformed JSON lines, missing image files); the pipeline counts what only
decoding can tell (non-image and unreadable files, empty captions).
"""

import collections
import csv
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from keras_clip.data import parquet_shards
from keras_clip.data import shards
from keras_clip.data import tar_shards
from keras_clip.data.locations import shard_parts
from keras_clip.data.parquet_shards import PARQUET_SUFFIX
from keras_clip.data.shards import TFRECORD_SUFFIX
from keras_clip.data.tar_shards import TAR_SUFFIX

CAPTION_FILES = ("captions.csv", "captions.jsonl")
IMAGE_COLUMNS = ("file", "filename", "file_name", "image", "image_path", "path", "filepath")
CAPTION_COLUMNS = ("caption", "captions", "text")
# Shard kinds, by the file name suffix that tells them apart.
SHARD_SUFFIXES = {"webdataset": TAR_SUFFIX, "parquet": PARQUET_SUFFIX, "tfrecord": TFRECORD_SUFFIX}
SHARD_KINDS = tuple(SHARD_SUFFIXES)
PAIRED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclasses.dataclass
class Examples:
    """What a source holds, before any decoding.

    Attributes:
        kind: "files" (paths), "bytes" (encoded images), "pixels" (uint8
            (N, H, W, 3)), or one of `SHARD_KINDS` (shard paths in
            `images`).
        images: list or array, one entry per image (per shard for shards).
        captions: list of lists of str, one list per image (None for shards).
        skipped: `collections.Counter` of rows skipped, by reason.
        origin: str, where the examples came from (for messages).
        options: the shard reader's keyword arguments (column names).
        part_sizes: for shards, how many of `images` each part of the
            spec (a "::" piece or list entry) gave, in order.
    """

    kind: str
    images: object
    captions: list
    skipped: collections.Counter
    origin: str
    options: dict = dataclasses.field(default_factory=dict)
    part_sizes: list = None
    _record_count: int = dataclasses.field(default=None, repr=False, compare=False)

    def __len__(self):
        """The number of images (for shards: records, not shards)."""
        return self.num_images()

    def num_images(self):
        """Images in the source (for shards: records or samples, counted by
        reading once, or as declared by the webdataset writer)."""
        if self.kind not in SHARD_KINDS:
            return len(self.images)
        if self._record_count is None:
            if self.kind == "tfrecord":
                self._record_count = shards.count_records(self.images)
            elif self.kind == "webdataset":
                self._record_count = tar_shards.count_samples(self.images, **self.options)
            else:
                self._record_count = parquet_shards.count_samples(self.images, **self.options)
        return self._record_count

    def all_captions(self):
        """Every caption, as a flat list of str (e.g. to learn a vocabulary)."""
        if self.kind not in SHARD_KINDS:
            return [c for captions in self.captions for c in captions]
        captions = self.read_shards(training=False).map(lambda e: e["captions"]).unbatch()
        return [c.decode("utf-8", errors="replace") for c in captions.as_numpy_iterator()]

    def read_shards(self, training, seed=0, epoch=None, report=None, resampled=False):
        """Shards -> dataset of {"image", "captions", "index", "epoch"}, with
        this source's reader (see `tar_shards.read_tar_shards`)."""
        if self.kind == "tfrecord":
            return shards.read_shards(
                self.images, training, seed, epoch, resampled=resampled, **self.options
            )
        if self.kind == "webdataset":
            read = tar_shards.read_tar_shards
        else:
            read = parquet_shards.read_parquet_shards
        return read(self.images, training, seed, epoch, report, resampled, **self.options)


def read_source(source, image_column=None, caption_column=None):
    """Any supported source -> `Examples` (see the module docstring)."""
    if isinstance(source, dict):
        missing = {"images", "captions"} - set(source)
        if missing:
            raise ValueError(
                f"An in-memory source needs the keys 'images' and "
                f"'captions'; missing {sorted(missing)}."
            )
        return _from_memory(source["images"], source["captions"])
    if isinstance(source, tuple) and len(source) == 2:
        return _from_memory(*source)
    if (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(s, (str, os.PathLike)) for s in source)
    ):
        return _from_shard_spec(
            [os.fspath(s) for s in source], "shard list", image_column, caption_column
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be (images, captions), a dict, a folder, a captions "
            f"file, shards (a pattern or a list); got {type(source).__name__}."
        )
    path = os.fspath(source)
    if "::" in path or "{" in path or any(c in path for c in "*?["):
        return _from_shard_spec(path, path, image_column, caption_column)
    if tf.io.gfile.isdir(path):
        found = [f for f in CAPTION_FILES if os.path.isfile(os.path.join(path, f))]
        if len(found) > 1:
            raise ValueError(f"{path!r} has both {found[0]} and {found[1]}; pass the one to use.")
        if found:
            path = os.path.join(path, found[0])
        else:
            for suffix in SHARD_SUFFIXES.values():
                found = tf.io.gfile.glob(os.path.join(path, f"*{suffix}"))
                if any(not parquet_shards.is_metadata_sidecar(shard) for shard in found):
                    return _from_shard_spec(path, path, image_column, caption_column)
            if os.path.isdir(path):
                return _from_paired_files(path)
            raise FileNotFoundError(
                f"{path!r} has no captions.csv, captions.jsonl, shards "
                f"({', '.join('*' + suffix for suffix in SHARD_SUFFIXES.values())}) "
                "or images with same-name .txt captions."
            )
    elif not os.path.isfile(path) and tf.io.gfile.exists(path) and _shard_kind([path]):
        return _from_shard_spec(path, path, image_column, caption_column)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file or folder: {path!r}.")
    if path.endswith(".csv"):
        return _from_captions_file(path, _csv_rows(path), image_column, caption_column)
    if path.endswith(".jsonl"):
        return _from_captions_file(path, _jsonl_rows(path), image_column, caption_column)
    if _shard_kind([path]):
        return _from_shard_spec(path, path, image_column, caption_column)
    raise ValueError(
        f"Cannot tell what {path!r} holds: expected a .csv or .jsonl "
        f"captions file, or a {', '.join(SHARD_SUFFIXES.values())} shard."
    )


def _shard_kind(paths):
    """The kind of shard (a key of `SHARD_SUFFIXES`) every path is, else None."""
    names = [os.path.basename(p) for p in paths]
    for kind, suffix in SHARD_SUFFIXES.items():
        # TFRecord shard names may go on after the suffix (".tfrecord-00001").
        if all(name.endswith(suffix) or (kind == "tfrecord" and suffix in name) for name in names):
            return kind
    return None


def _from_shard_spec(spec, origin, image_column, caption_column):
    parts, sidecars = [], set()
    for suffix in SHARD_SUFFIXES.values():  # the first kind with data shards
        try:
            found = shard_parts(spec, suffix)
        except FileNotFoundError:
            continue
        sidecars |= {p for part in found for p in part if parquet_shards.is_metadata_sidecar(p)}
        parts = [kept for part in found if (kept := [p for p in part if p not in sidecars])]
        if parts:
            break
    paths = [path for part in parts for path in part]
    if sidecars and not paths:
        raise FileNotFoundError(
            f"{origin!r} names only img2dataset's metadata files ({min(sidecars)!r}, ...), "
            "not data shards: pass the output folder, or its .tar shards."
        )
    kind = _shard_kind(paths) if paths else None
    if kind is None:
        found = f"found {paths[:3]}..." if paths else "found none"
        raise FileNotFoundError(f"{origin!r} names no shards of one kind ({found}).")
    if kind == "webdataset":
        options = tar_shards.member_options(image_column, caption_column)
    elif kind == "parquet":
        options = parquet_shards.column_names(paths, image_column, caption_column)
    else:
        options = shards.feature_names(paths, image_column, caption_column)
    part_sizes = [len(part) for part in parts]
    return Examples(kind, paths, None, collections.Counter(), origin, options, part_sizes)


def _from_paired_files(folder):
    """img2dataset's `files` layout: images beside same-name .txt captions."""
    skipped = collections.Counter()
    files, captions = [], []
    for directory, _, names in sorted(os.walk(folder)):
        stems = {}
        for name in sorted(names):
            stem, suffix = os.path.splitext(name)
            stems.setdefault(stem, {})[suffix.lower()] = os.path.join(directory, name)
        for _, members in sorted(stems.items()):
            image = next((members[s] for s in PAIRED_IMAGE_SUFFIXES if s in members), None)
            if image is None:
                skipped["missing_image"] += ".txt" in members
                continue
            if ".txt" not in members:
                skipped["missing_caption"] += 1
                continue
            with open(members[".txt"], encoding="utf-8", errors="replace") as f:
                files.append(image)
                captions.append([f.read()])
    if not files:
        raise FileNotFoundError(
            f"{folder!r} has no captions.csv, captions.jsonl, shards, or images with "
            f"same-name .txt captions (skipped: {dict(skipped)})."
        )
    return Examples("files", files, captions, skipped, folder)


def _caption_list(value):
    """A caption cell -> list of str, or None when the field is unusable."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _from_memory(images, captions):
    captions = list(captions) if not isinstance(captions, str) else None
    if captions is None:
        raise TypeError(
            "captions must be a list of strings (or of lists of strings), not a single string."
        )
    if len(images) != len(captions):
        raise ValueError(
            f"Got {len(images)} images but {len(captions)} captions; "
            "an in-memory source needs one caption entry per image."
        )
    skipped = collections.Counter()
    kept_images, kept_captions = [], []
    for image, caption in zip(images, captions):
        caption = _caption_list(caption)
        if image is None or caption is None:
            skipped["missing_field"] += 1
            continue
        kept_images.append(image)
        kept_captions.append(caption)
    if not kept_images:
        raise ValueError(f"The in-memory source has no usable example (skipped: {dict(skipped)}).")
    kind, kept_images = _image_kind(kept_images)
    return Examples(kind, kept_images, kept_captions, skipped, "in-memory arrays")


def _image_kind(images):
    if all(isinstance(image, (bytes, np.bytes_)) for image in images):
        return "bytes", [bytes(image) for image in images]
    arrays = [np.asarray(image) for image in images]
    for index, array in enumerate(arrays):
        if array.dtype != np.uint8:
            raise ValueError(
                f"Image {index} has dtype {array.dtype}; in-memory "
                "images must be uint8 arrays or encoded bytes."
            )
        if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) or array.ndim not in (2, 3):
            raise ValueError(
                f"Image {index} has shape {array.shape}; expected "
                "(height, width) or (height, width, 1, 3 or 4)."
            )
    arrays = [_to_rgb(array) for array in arrays]
    if len({a.shape for a in arrays}) == 1:
        return "pixels", np.stack(arrays)
    return "bytes", [tf.io.encode_png(a).numpy() for a in arrays]


def _to_rgb(array):
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1)
    return array[..., :3]


def _csv_rows(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"Cannot read the captions file {path!r}: {error}") from error
    return columns, rows


def _jsonl_rows(path):
    rows, columns = [], []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"Cannot read the captions file {path!r}: {error}") from error
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            rows.append(None)
            continue
        columns.extend(k for k in row if k not in columns)
        rows.append(row)
    return columns, rows


def _pick_column(path, columns, requested, candidates, what):
    if requested is not None:
        if requested not in columns:
            raise ValueError(
                f"The captions file {path!r} has no {what} column "
                f"{requested!r}; its columns are {columns}."
            )
        return requested
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"The captions file {path!r} has no {what} column: expected "
        f"one of {list(candidates)} (or name it: {what}_column= in "
        f"Python, --{what}-column on the command line); its "
        f"columns are {columns}."
    )


def _from_captions_file(path, columns_and_rows, image_column, caption_column):
    columns, rows = columns_and_rows
    image_column = _pick_column(path, columns, image_column, IMAGE_COLUMNS, "image")
    caption_column = _pick_column(path, columns, caption_column, CAPTION_COLUMNS, "caption")
    root = os.path.dirname(os.path.abspath(path))
    skipped = collections.Counter()
    captions_by_file = {}
    for row in rows:
        if row is None:
            skipped["malformed_row"] += 1
            continue
        name = row.get(image_column)
        caption = _caption_list(row.get(caption_column))
        if not isinstance(name, str) or not name.strip() or caption is None:
            skipped["missing_field"] += 1
            continue
        captions_by_file.setdefault(os.path.join(root, name.strip()), []).extend(caption)
    files, captions = [], []
    for file, file_captions in captions_by_file.items():
        if os.path.isfile(file):
            files.append(file)
            captions.append(file_captions)
        else:
            skipped["missing_file"] += 1
    if not files:
        raise ValueError(
            f"The captions file {path!r} (columns {image_column!r} and "
            f"{caption_column!r}) names no usable example; skipped: {dict(skipped)}."
        )
    return Examples("files", files, captions, skipped, path)
