"""PNG heatmaps of similarity and confusion matrices."""

import numpy as np

# Anchor colours of a perceptually ordered map (dark blue -> teal -> yellow).
_ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], "float64"
)


def colorize(matrix):
    """Maps a 2-D array to uint8 RGB, its minimum dark and its maximum bright."""
    matrix = np.asarray(matrix, "float64")
    low, high = np.nanmin(matrix), np.nanmax(matrix)
    scaled = np.zeros_like(matrix) if high == low else (matrix - low) / (high - low)
    position = np.nan_to_num(scaled) * (len(_ANCHORS) - 1)
    index = np.clip(position.astype(int), 0, len(_ANCHORS) - 2)
    fraction = (position - index)[..., None]
    rgb = _ANCHORS[index] * (1 - fraction) + _ANCHORS[index + 1] * fraction
    return rgb.round().astype("uint8")


def save_heatmap(matrix, path, cell_size=8):
    """Writes `matrix` as a heatmap PNG, each entry a cell_size square.

    Example:

    ```python
    save_heatmap(np.eye(3), "confusion.png")
    ```
    """
    import tensorflow as tf

    rgb = colorize(matrix)
    rgb = np.repeat(np.repeat(rgb, cell_size, axis=0), cell_size, axis=1)
    tf.io.write_file(path, tf.io.encode_png(rgb))
    return path
