"""scikit-learn's handwritten digits, captioned: real images for quick runs.

The 1,797 8x8 grey images of digits written by 43 people (UCI's optical
recognition set, shipped inside scikit-learn, so nothing is downloaded),
scaled to `image_size` as RGB (ink dark on white) with English captions
naming the digit ("a handwritten seven", ...). Split into a training part
(the first 80% in scikit-learn's order) and a test part (the rest). Zero-shot classification
with prompts such as "a photo of the number seven." has 10 classes.

Example:

```python
from keras_clip.datasets import digits
train = digits.load("train", image_size=32)
train["images"].shape, train["captions"][0], digits.CLASS_NAMES[0]
# ((1437, 32, 32, 3), 'a handwritten zero', 'zero')
```
"""

import numpy as np

from keras_clip.utils import require

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION_TEMPLATES = (
    "a handwritten {}",
    "the digit {}, written by hand",
    "a scan of the number {}",
    "{}, in pen",
    "a photo of the number {}.",
)
SPLITS = ("train", "test")
TRAIN_SHARE = 0.8


def load(split, image_size=32, seed=0):
    """One split of the digits, captioned.

    Args:
        split: "train" or "test".
        image_size: int. Side of the square RGB images (a multiple of 8,
            each pixel a block of image_size / 8).
        seed: int. Picks each image's caption phrasing.

    Returns:
        A dict: "images" uint8 (N, S, S, 3); "captions" list of N str;
        "labels" int32 (N,) indices into "class_names" (= `CLASS_NAMES`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    if not isinstance(image_size, int) or image_size < 8 or image_size % 8:
        raise ValueError(f"image_size must be a positive multiple of 8, got {image_size!r}.")
    require(("sklearn",), "The digits dataset", extra="test")
    from sklearn.datasets import load_digits

    found = load_digits()
    cut = int(len(found.target) * TRAIN_SHARE)
    part = slice(0, cut) if split == "train" else slice(cut, None)
    pixels = found.images[part]  # (N, 8, 8), ink 0..16
    labels = found.target[part].astype("int32")
    grey = np.round(255.0 * (1.0 - pixels / 16.0)).astype("uint8")
    scale = image_size // 8
    grey = np.repeat(np.repeat(grey, scale, axis=1), scale, axis=2)
    rng = np.random.default_rng(seed)
    phrasings = rng.integers(len(CAPTION_TEMPLATES), size=len(labels))
    return {
        "images": np.repeat(grey[..., None], 3, axis=-1),
        "captions": [
            CAPTION_TEMPLATES[p].format(CLASS_NAMES[label]) for p, label in zip(phrasings, labels)
        ],
        "labels": labels,
        "class_names": list(CLASS_NAMES),
    }
