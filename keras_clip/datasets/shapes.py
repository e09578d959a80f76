"""Generated images of coloured shapes with English captions (offline).

Each image shows one shape (circle, square, triangle, cross, diamond) in one
of six colours, small or large, at one of five places, on a noisy light
background. Its caption says all four attributes in one of several
phrasings ("a small red circle on the left", "at the top, a large blue
square", ...). The class label is the colour-shape pair, so zero-shot
classification with prompts such as "a photo of a red circle." has
len(COLORS) * len(SHAPES) = 30 classes (chance: 3.3%).

Example:

```python
from keras_clip.datasets import shapes
data = shapes.load(1000, image_size=64, seed=0)
data["images"].shape, data["captions"][0], data["class_names"][0]
# ((1000, 64, 64, 3), 'a small red circle on the left', 'red circle')
```
"""

import itertools

import numpy as np

COLORS = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (45, 85, 220),
    "yellow": (235, 205, 35),
    "purple": (140, 60, 185),
    "orange": (245, 135, 30),
}
SHAPES = ("circle", "square", "triangle", "cross", "diamond")
SIZES = ("small", "large")
POSITIONS = {
    "left": ((0.5, 0.25), "on the left"),
    "right": ((0.5, 0.75), "on the right"),
    "top": ((0.25, 0.5), "at the top"),
    "bottom": ((0.75, 0.5), "at the bottom"),
    "center": ((0.5, 0.5), "in the middle"),
}
CLASS_NAMES = tuple(f"{c} {s}" for c, s in itertools.product(COLORS, SHAPES))
CAPTION_TEMPLATES = (
    "a {size} {color} {shape} {where}",
    "{where}, a {size} {color} {shape}",
    "there is a {size} {color} {shape} {where}",
    "a {color} {shape}, {size}, {where}",
    "a photo of a {size} {color} {shape} {where}",
)


def _mask(shape, dy, dx, radius):
    """Boolean mask of `shape` on offset grids dy, dx (pixels)."""
    ady, adx = np.abs(dy), np.abs(dx)
    if shape == "circle":
        return dy**2 + dx**2 <= radius**2
    if shape == "square":
        return np.maximum(ady, adx) <= 0.8 * radius
    if shape == "diamond":
        return ady + adx <= radius
    if shape == "cross":
        arm = radius / 3.0
        return ((adx <= arm) & (ady <= radius)) | ((ady <= arm) & (adx <= radius))
    if shape == "triangle":
        # Apex at the top, base at 0.7 r below the centre.
        height = (dy + radius) / (1.7 * radius)
        return (dy <= 0.7 * radius) & (height >= 0) & (adx <= height * radius)
    raise ValueError(f"Unknown shape {shape!r}.")


def render(color, shape, size, position, image_size=64, rng=None):
    """One uint8 (image_size, image_size, 3) image of the described shape."""
    rng = np.random.default_rng() if rng is None else rng
    background = rng.uniform(200, 250) + rng.normal(0, 6, (image_size, image_size, 1))
    image = np.repeat(background, 3, axis=-1)
    image += rng.normal(0, 4, image.shape)
    (cy, cx), _ = POSITIONS[position]
    radius = image_size * (0.11 if size == "small" else 0.2) * rng.uniform(0.9, 1.1)
    jitter = image_size * 0.04
    cy = cy * image_size + rng.uniform(-jitter, jitter)
    cx = cx * image_size + rng.uniform(-jitter, jitter)
    yy, xx = np.mgrid[0:image_size, 0:image_size] + 0.5
    mask = _mask(shape, yy - cy, xx - cx, radius)
    tint = np.asarray(COLORS[color], "float64") + rng.normal(0, 10, 3)
    image[mask] = tint + rng.normal(0, 5, (int(mask.sum()), 3))
    return np.clip(image, 0, 255).astype("uint8")


def load(num_examples, image_size=64, seed=0, classes=None):
    """Generates `num_examples` captioned images.

    Args:
        num_examples: int. How many examples.
        image_size: int. Side of the square images, in pixels (>= 16).
        seed: int. The same seed gives the same examples.
        classes: optional list of class names ("red circle", ...) to draw
            from; default all of `CLASS_NAMES`. Labels always index the full
            `CLASS_NAMES`.

    Returns:
        A dict: "images" uint8 (N, S, S, 3); "captions" list of N str;
        "labels" int32 (N,) indices into "class_names" (= `CLASS_NAMES`);
        "colors", "shapes", "sizes", "positions": lists of N attribute names.
    """
    if not isinstance(num_examples, int) or num_examples <= 0:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}.")
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}.")
    classes = list(CLASS_NAMES if classes is None else classes)
    unknown = sorted(set(classes) - set(CLASS_NAMES))
    if unknown or not classes:
        raise ValueError(f"Unknown classes {unknown}; choose from {CLASS_NAMES}.")
    rng = np.random.default_rng(seed)
    images = np.empty((num_examples, image_size, image_size, 3), "uint8")
    data = {key: [] for key in ("captions", "labels", "colors", "shapes", "sizes", "positions")}
    for index in range(num_examples):
        color, shape = classes[rng.integers(len(classes))].split(" ")
        size = SIZES[rng.integers(len(SIZES))]
        position = list(POSITIONS)[rng.integers(len(POSITIONS))]
        images[index] = render(color, shape, size, position, image_size, rng)
        template = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
        data["captions"].append(
            template.format(size=size, color=color, shape=shape, where=POSITIONS[position][1])
        )
        data["labels"].append(CLASS_NAMES.index(f"{color} {shape}"))
        for key, value in (
            ("colors", color),
            ("shapes", shape),
            ("sizes", size),
            ("positions", position),
        ):
            data[key].append(value)
    data["labels"] = np.asarray(data["labels"], "int32")
    return {"images": images, "class_names": list(CLASS_NAMES), **data}
