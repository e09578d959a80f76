"""Writes generated shapes as evaluation sets: a class folder and
CLIP_benchmark's webdataset layout (written with the real `webdataset`
package), each with one image that is not an image and one half JPEG."""

import io
import os

import numpy as np
import webdataset
from PIL import Image

from keras_clip.datasets import shapes

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
    """CLIP_benchmark's layout under root (split "test"), two bad samples
    in the last shard. Retrieval samples carry two captions each.

    Returns:
        (images uint8, labels) of the good samples in reading order.
    """
    images, labels = shapes_of(CLASSES, count)
    split = os.path.join(root, "test")
    os.makedirs(split, exist_ok=True)
    per_shard = -(-count // shards)
    for shard in range(shards):
        with webdataset.TarWriter(os.path.join(split, f"{shard}.tar")) as sink:
            for index in range(shard * per_shard, min(count, (shard + 1) * per_shard)):
                sample = {
                    "__key__": f"s{index:05d}",
                    "webp": _encoded(images[index], "WEBP", lossless=True),
                }
                name = CLASSES[labels[index]]
                if retrieval:
                    sample["txt"] = f"a photo of a {name}.\na {name} on white."
                else:
                    sample["cls"] = str(int(labels[index]))
                sink.write(sample)
            if shard == shards - 1:
                bad = {"txt": "a red circle."} if retrieval else {"cls": "0"}
                sink.write({"__key__": "bad00000", "webp": b"not a picture", **bad})
                sink.write({"__key__": "bad00001", "jpg": _encoded(images[0], "JPEG")[:300], **bad})
    with open(os.path.join(split, "nshards.txt"), "w") as f:
        f.write(f"{shards}\n")
    if retrieval:
        with open(os.path.join(root, "dataset_type.txt"), "w") as f:
            f.write("retrieval\n")
    else:
        with open(os.path.join(root, "classnames.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in CLASSES))
        with open(os.path.join(root, "zeroshot_classification_templates.txt"), "w") as f:
            f.write("".join(f"{template}\n" for template in TEMPLATES))
    return images, labels
