"""Builds image-caption folders on disk, with a known share of bad entries.

The good images are PNGs and JPEGs of several kinds (RGB, grayscale, RGBA,
palette, 16-bit); the bad entries are, each about 5% of the rows: truncated
files, non-image files, missing files, empty captions and rows with a
missing field (plus, in JSONL, lines that are not JSON objects).
"""

import csv
import io
import json
import os

import numpy as np
from PIL import Image

BAD_PER_KIND = 3
GOOD = 48


def _image(index, size=(36, 44)):
    """A deterministic, varied RGB picture: colour blocks plus noise."""
    rng = np.random.default_rng(index)
    image = np.zeros(size + (3,), "uint8")
    image[: size[0] // 2] = rng.integers(0, 255, 3)
    image[size[0] // 2 :] = rng.integers(0, 255, 3)
    return np.clip(image + rng.integers(0, 30, image.shape), 0, 255).astype("uint8")


def save_good_image(folder, index):
    """Saves image `index` in one of six encodings; returns its file name."""
    pixels = Image.fromarray(_image(index))
    kind = index % 6
    if kind == 0:
        name, image = f"good{index}.png", pixels
    elif kind == 1:
        name, image = f"good{index}.jpg", pixels
    elif kind == 2:
        name, image = f"good{index}_gray.png", pixels.convert("L")
    elif kind == 3:
        name, image = f"good{index}_rgba.png", pixels.convert("RGBA")
    elif kind == 4:
        name, image = f"good{index}_palette.png", pixels.convert("P")
    else:
        gray16 = np.asarray(pixels.convert("L")).astype("uint16") * 257
        name, image = f"good{index}_16bit.png", Image.fromarray(gray16)
    image.save(os.path.join(folder, name))
    return name


def build_folder(folder, captions_format="csv"):
    """Writes images and a captions file; returns what a reader must find.

    Returns:
        dict: "pairs" (file, caption) of the usable examples in file
        order, and "counts" (reason -> expected number skipped).
    """
    os.makedirs(folder, exist_ok=True)
    rows, pairs = [], []
    for index in range(GOOD):
        name = save_good_image(folder, index)
        captions = [f"picture {index} on the left"]
        if index % 8 == 0:  # several captions for some images
            captions.append(f"another view of picture {index}")
        for caption in captions:
            rows.append({"file": name, "caption": caption})
            pairs.append((name, caption))
    good_png = open(os.path.join(folder, "good0.png"), "rb").read()
    for index in range(BAD_PER_KIND):
        truncated = f"truncated{index}.png"
        with open(os.path.join(folder, truncated), "wb") as f:
            f.write(good_png[: 60 + 20 * index])
        not_image = f"notes{index}.jpg"
        with open(os.path.join(folder, not_image), "w") as f:
            f.write("this is not a picture" * (index + 1))
        rows += [
            {"file": truncated, "caption": "a truncated file"},
            {"file": not_image, "caption": "a text file"},
            {"file": f"missing{index}.png", "caption": "a missing file"},
            {"file": f"good{6 * (index + 1)}.png", "caption": " \t "},
            {"file": "", "caption": "no file named"},
        ]
    counts = {
        "unreadable_image": BAD_PER_KIND,
        "not_an_image": BAD_PER_KIND,
        "missing_file": BAD_PER_KIND,
        "empty_caption": BAD_PER_KIND,
        "missing_field": BAD_PER_KIND,
        "malformed_row": 0,
        # Shard reasons: a folder has none.
        "missing_image": 0,
        "missing_caption": 0,
        "truncated": 0,
    }
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    if captions_format == "csv":
        with open(os.path.join(folder, "captions.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, ["file", "caption"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        with open(os.path.join(folder, "captions.jsonl"), "w") as f:
            for index, row in enumerate(rows):
                if not row["file"]:
                    row = {"caption": row["caption"]}
                f.write(json.dumps(row) + "\n")
                if index % 25 == 0:
                    f.write("{not json\n")
                    counts["malformed_row"] = counts.get("malformed_row", 0) + 1
    # Pairs in the order the reader meets each image's first row.
    first_row = {}
    for position, row in enumerate(rows):
        first_row.setdefault(row["file"], position)
    by_file = {}
    for name, caption in pairs:
        by_file.setdefault(name, []).append(caption)
    ordered = sorted(by_file, key=first_row.__getitem__)
    ordered_pairs = []
    for name in ordered:
        row_captions = [r["caption"] for r in rows if r["file"] == name]
        ordered_pairs += [(name, c) for c in row_captions if c.strip()]
    return {"pairs": ordered_pairs, "counts": counts}


def jpeg_bytes(pixels, orientation=1, quality=95):
    """JPEG bytes of `pixels` stored rotated so that EXIF `orientation`
    turns them back upright."""
    image = Image.fromarray(pixels)
    stored = {
        1: image,
        2: image.transpose(Image.FLIP_LEFT_RIGHT),
        3: image.transpose(Image.ROTATE_180),
        4: image.transpose(Image.FLIP_TOP_BOTTOM),
        5: image.transpose(Image.TRANSPOSE),
        6: image.transpose(Image.ROTATE_90),
        7: image.transpose(Image.TRANSVERSE),
        8: image.transpose(Image.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()
