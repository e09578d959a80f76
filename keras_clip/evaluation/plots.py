"""Labelled PNG plots of a confusion matrix and of image-text similarity.

`save_confusion` draws the classes' names on both axes with a colour scale
of the share of each true class predicted as each class; with many classes
it keeps the most-confused ones (the largest off-diagonal shares), so that
the picture stays readable. `save_similarity` draws image-caption cosine
similarities. Both use matplotlib without a display.

Example:

```python
save_confusion(np.eye(3) * 5, ["cat", "dog", "bird"], "confusion.png")
```
"""

import numpy as np


def most_confused_classes(confusion, count):
    """Indices of the `count` classes most involved in confusions (the sum
    of their off-diagonal row and column shares), in their original order."""
    confusion = np.asarray(confusion, "float64")
    if len(confusion) <= count:
        return np.arange(len(confusion))
    shares = row_shares(confusion)
    off_diagonal = shares - np.diag(np.diag(shares))
    involvement = off_diagonal.sum(axis=1) + off_diagonal.sum(axis=0)
    return np.sort(np.argsort(-involvement, kind="stable")[:count])


def row_shares(confusion):
    """Each row divided by its total (rows without examples stay 0)."""
    confusion = np.asarray(confusion, "float64")
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)


def save_confusion(confusion, class_names, path, max_classes=30):
    """Writes the confusion matrix as a labelled PNG.

    Args:
        confusion: (C, C) counts, rows the true classes, columns the
            predicted ones.
        class_names: C names.
        path: the PNG file to write.
        max_classes: the most classes drawn; beyond it, the most-confused.

    Returns:
        `path`.
    """
    confusion = np.asarray(confusion)
    if confusion.shape != (len(class_names), len(class_names)):
        raise ValueError(
            f"A confusion matrix of shape {confusion.shape} needs {confusion.shape[0]} "
            f"class names; got {len(class_names)}."
        )
    keep = most_confused_classes(confusion, max_classes)
    shares = row_shares(confusion)[np.ix_(keep, keep)]
    names = [class_names[i] for i in keep]
    title = "Zero-shot confusion (share of each true class)"
    if len(keep) < len(class_names):
        title += f"\nthe {len(keep)} most-confused of {len(class_names)} classes"
    return _save(shares, path, title, "predicted class", "true class", names, names, (0, 1))


def save_similarity(similarity, path):
    """Writes image-caption cosine similarities (rows images, columns their
    captions, in order) as a labelled PNG; returns `path`."""
    similarity = np.asarray(similarity)
    title = "Cosine similarity of images and captions (pairs on the diagonal)"
    return _save(similarity, path, title, "caption", "image", None, None, None)


def _save(matrix, path, title, x_label, y_label, x_names, y_names, limits):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    size = max(6.0, 0.28 * len(matrix) + 3.0)
    figure, axes = pyplot.subplots(figsize=(size + 1.5, size), dpi=100)
    low, high = limits or (None, None)
    image = axes.imshow(matrix, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    if x_names is not None:
        axes.set_xticks(range(len(x_names)), x_names, rotation=90, fontsize=8)
        axes.set_yticks(range(len(y_names)), y_names, fontsize=8)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path
