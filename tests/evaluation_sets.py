"""Writes generated shapes as evaluation sets: a class folder and
CLIP_benchmark's webdataset layout (written by CLIP_benchmark's own
converter), each with one image that is not an image and one half JPEG."""

import io
import json
import os
import tempfile

import numpy as np
from PIL import Image

from keras_clip.datasets import shapes
from tests import peer_tools

CLASSES = shapes.CLASS_NAMES  # all 30, so that a model makes some errors
TEMPLATES = ("a photo of a {c}.", "a drawing of a {c}.")


def _encoded(image, kind, **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=kind, **options)
    return buffer.getvalue()


def shapes_of(classes, count, size=64, seed=3):
    """`count` generated images of the given classes: (images, labels)."""
    data = shapes.load(count * 6, size, seed=seed)
    names = list(data["class_names"])
    wanted = [names.index(name) for name in classes]
    keep = np.isin(data["labels"], wanted)
    images = data["images"][keep][:count]
    labels = np.array([wanted.index(label) for label in data["labels"][keep][:count]])
    return images, labels


def build_class_folder(root, count=60, classnames_file=False):
    """root/<class_with_underscores>/NNN.png|jpg, plus two bad files.

    Returns:
        (paths, labels, class_names) of the good images in reading order.
    """
    images, labels = shapes_of(CLASSES, count)
    folders = [name.replace(" ", "_") for name in CLASSES]
    written = []
    for index, (image, label) in enumerate(zip(images, labels)):
        kind = "PNG" if index % 2 else "JPEG"
        folder = os.path.join(root, folders[label])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{index:03d}.{'png' if kind == 'PNG' else 'jpg'}")
        with open(path, "wb") as f:
            f.write(_encoded(image, kind))
        written.append((folders[label], path, label))
    first, second = sorted({folder for folder, _, _ in written})[:2]
    with open(os.path.join(root, first, "zzz_not_an_image.png"), "wb") as f:
        f.write(b"plain text, not a picture")
    with open(os.path.join(root, second, "zzz_half.jpg"), "wb") as f:
        f.write(_encoded(images[0], "JPEG")[:300])
    if classnames_file:
        with open(os.path.join(root, "classnames.txt"), "w") as f:
            f.write("".join(f"the {name}\n" for name in CLASSES))
    written.sort()
    order = sorted({folder for folder, _, _ in written})  # numbered in sorted order
    class_names = [name.replace("_", " ") for name in order]
    labels = [order.index(folder) for folder, _, _ in written]
    return [path for _, path, _ in written], np.array(labels), class_names


def build_clip_benchmark(root, count=40, retrieval=False, shards=2):
    """A set under root (split "test") written by CLIP_benchmark's own
    converter from lossless WebP files, two bad samples (not an image, half
    a JPEG) in the last shard. Retrieval samples carry two captions each.

    Returns:
        (images uint8, labels) of the good samples in reading order.
    """
    images, labels = shapes_of(CLASSES, count)
    with tempfile.TemporaryDirectory() as staging:
        items = []
        for index, (image, label) in enumerate(zip(images, labels)):
            path = os.path.join(staging, f"{index:05d}.webp")
            Image.fromarray(image).save(path, format="WEBP", lossless=True)
            items.append((path, int(label)))
        with open(os.path.join(staging, "bad.webp"), "wb") as f:
            f.write(b"not a picture")
        with open(os.path.join(staging, "bad.jpg"), "wb") as f:
            f.write(_encoded(images[0], "JPEG")[:300])
        items += [(os.path.join(staging, "bad.webp"), 0), (os.path.join(staging, "bad.jpg"), 0)]
        if retrieval:
            items = [(path, _captions(CLASSES[label])) for path, label in items]
        spec = {
            "output": root,
            "items": items,
            "classes": list(CLASSES),
            "templates": list(TEMPLATES),
            "retrieval": retrieval,
            "max_count": -(-count // shards),
        }
        with open(os.path.join(staging, "spec.json"), "w") as f:
            json.dump(spec, f)
        peer_tools.run_clip_benchmark("convert", os.path.join(staging, "spec.json"))
    return images, labels


def _captions(name):
    return [f"a photo of a {name}.", f"a {name} on white."]
