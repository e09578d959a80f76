"""Evaluation sets: class folders and CLIP_benchmark's webdataset layout.

A class folder is `root/<class>/*.jpg` (any depth below the class folder),
classes in sorted folder order as torchvision's `ImageFolder` numbers them;
their names are the folder names with "_" as spaces, or the lines of
`root/classnames.txt` when it has one line per folder.

CLIP_benchmark's webdataset layout (`clip_benchmark_export_wds`, and the
`clip-benchmark/wds_*` sets) is

    root/test/nshards.txt     the number of shards, N
    root/test/0.tar ...       N-1.tar: webdataset samples
    root/classnames.txt       one class name per line (classification)
    root/zeroshot_classification_templates.txt   one template per line
    root/dataset_type.txt     "retrieval" for retrieval sets

A classification sample holds an image (`.webp`, `.png`, `.jpg` or `.jpeg`)
and its label (`.cls`, an integer); a retrieval sample an image and its
captions (`.txt`, one per line).

Images are decoded and fitted to the square exactly as
`keras_clip.data.load_images` does (`images.fit_to_square`). Unusable samples are skipped and
counted in the returned set's `report` (not an image, unreadable, missing
label or captions, truncated shards).

Example:

```python
from keras_clip.data import labelled

found = labelled.read_evaluation_set("wds_cifar10/", model, batch_size=64)
for batch in found.batches:  # {"images": uint8 (B, S, S, 3), "labels": int64 (B,)}
    ...
found.report.counts()
```
"""

import dataclasses
import os

import tensorflow as tf

from keras_clip.data.decoding import decoded_elements
from keras_clip.data.report import DataReport
from keras_clip.data.tar_shards import read_tar_shard
from keras_clip.evaluation.prompts import read_lines
from keras_clip.models.preprocessing import as_image_preprocessing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
BENCHMARK_IMAGE_EXTENSIONS = ("webp", "png", "jpg", "jpeg")


@dataclasses.dataclass
class EvaluationSet:
    """A labelled or captioned evaluation set, read lazily.

    Attributes:
        task: "classification" or "retrieval".
        batches: `tf.data.Dataset` of dicts: "images" uint8 (B, S, S, 3),
            "keys" str (B,), and "labels" int64 (B,) (classification) or
            "captions" str (B,), each image's captions joined by newlines
            (retrieval).
        class_names: list of str (classification) or None.
        templates: the set's own templates (list of str) or None.
        origin: str, where it was read from.
        report: the `DataReport` of what was skipped.
    """

    task: str
    batches: tf.data.Dataset
    class_names: list
    templates: list
    origin: str
    report: DataReport


def is_clip_benchmark(root, split="test"):
    """Whether `root` (or its `split` folder) holds CLIP_benchmark shards."""
    return any(
        os.path.isfile(os.path.join(folder, "nshards.txt"))
        for folder in (root, os.path.join(root, split))
    )


def read_evaluation_set(root, preprocessing, batch_size=64, split="test"):
    """A class folder or a CLIP_benchmark webdataset set, by its layout.

    Args:
        root: the folder (for CLIP_benchmark: the set's root or its split
            folder).
        preprocessing: the model (its own image settings), its
            `ImagePreprocessing`, or an int (OpenAI's settings at that size):
            how images are fitted to the square (`images.fit_to_square`).
        batch_size: int.
        split: CLIP_benchmark's split folder.

    Returns:
        an `EvaluationSet`.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"No evaluation set folder {root!r}.")
    settings = {"preprocessing": as_image_preprocessing(preprocessing), "training": False}
    if is_clip_benchmark(root, split):
        return _clip_benchmark(root, split, settings, batch_size)
    return _class_folder(root, settings, batch_size)


def _class_folder(root, settings, batch_size):
    folders = sorted(
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name)) and not name.startswith(".")
    )
    paths, labels = [], []
    for label, folder in enumerate(folders):
        for directory, subfolders, names in os.walk(os.path.join(root, folder)):
            subfolders.sort()
            found = sorted(n for n in names if n.lower().endswith(IMAGE_SUFFIXES))
            paths += [os.path.join(directory, name) for name in found]
            labels += [label] * len(found)
    if not paths:
        raise ValueError(
            f"{root!r} has no class folders with images ({', '.join(IMAGE_SUFFIXES)}) and "
            "no CLIP_benchmark nshards.txt."
        )
    class_names = [name.replace("_", " ") for name in folders]
    names_file = os.path.join(root, "classnames.txt")
    if os.path.isfile(names_file):
        class_names = read_lines(names_file)
        if len(class_names) != len(folders):
            raise ValueError(
                f"{names_file} has {len(class_names)} names for {len(folders)} class folders."
            )
    elements = tf.data.Dataset.from_tensor_slices(
        {
            "image": tf.constant(paths),
            "label": tf.constant(labels, tf.int64),
            "key": tf.constant([os.path.relpath(p, root) for p in paths]),
        }
    )
    report = DataReport(origin=root)
    batches = _decoded_batches(elements, "files", report, settings, batch_size, "labels")
    return EvaluationSet("classification", batches, class_names, None, root, report)


def _clip_benchmark(root, split, settings, batch_size):
    if os.path.isfile(os.path.join(root, "nshards.txt")):  # given the split folder
        shard_dir, root = root, os.path.dirname(os.path.abspath(root))
    else:
        shard_dir = os.path.join(root, split)
    (count,) = read_lines(os.path.join(shard_dir, "nshards.txt"))
    paths = [os.path.join(shard_dir, f"{i}.tar") for i in range(int(count))]
    missing = [p for p in paths if not tf.io.gfile.exists(p)]
    if missing:
        raise FileNotFoundError(f"nshards.txt lists {count} shards; missing {missing[:3]}.")
    metadata = {}
    for name in ("classnames", "zeroshot_classification_templates", "dataset_type"):
        path = os.path.join(root, f"{name}.txt")
        metadata[name] = read_lines(path) if os.path.isfile(path) else None
    task = "retrieval" if metadata["dataset_type"] == ["retrieval"] else "classification"
    if task == "classification" and not metadata["classnames"]:
        raise FileNotFoundError(f"{root}/classnames.txt is needed for zero-shot classification.")
    report = DataReport(origin=shard_dir)
    member = "cls" if task == "classification" else "txt"

    def samples(path):
        found, skipped = read_tar_shard(
            path, caption=member, image_extensions=BENCHMARK_IMAGE_EXTENSIONS
        )
        found = report.record_shard(skipped, found)
        return tf.data.Dataset.from_tensor_slices(
            {"image": found["image"], "captions": found["captions"].values, "key": found["key"]}
        )

    def element(sample):
        text = sample["captions"]
        if task == "retrieval":
            return {"image": sample["image"], "captions": text, "key": sample["key"]}
        is_label = tf.strings.regex_full_match(text, r"\s*[0-9]+\s*")
        label = tf.strings.to_number(tf.where(is_label, text, "-1"), tf.int64)
        return {"image": sample["image"], "label": label, "key": sample["key"]}

    elements = tf.data.Dataset.from_tensor_slices(paths).flat_map(samples).map(element)
    batches = _decoded_batches(
        elements, "bytes", report, settings, batch_size, "labels" if member == "cls" else None
    )
    return EvaluationSet(
        task,
        batches,
        metadata["classnames"],
        metadata["zeroshot_classification_templates"],
        shard_dir,
        report,
    )


def _decoded_batches(elements, kind, report, settings, batch_size, labels):
    """Elements {"image", "key", "label" or "captions"} -> decoded batches.

    A label of -1 (not a number) counts as a missing caption, as does a
    blank captions text.
    """

    def screenable(index, element):
        if labels:  # the label as the one "caption" screening looks at
            captions = tf.strings.as_string(element["label"])[None]
            captions = captions[: tf.cast(element["label"] >= 0, tf.int32)]
        else:
            captions = element["captions"][None]
        return dict(element, captions=captions, index=index), tf.zeros([3], tf.int64)

    decoded = decoded_elements(elements.enumerate().map(screenable), report, kind, settings)
    output = "labels" if labels else "captions"

    def batch_of(element):
        value = element["label"] if labels else element["captions"][0]
        return {"images": element["image"], "keys": element["key"], output: value}

    return decoded.map(batch_of).batch(batch_size).prefetch(tf.data.AUTOTUNE)
