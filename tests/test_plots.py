"""The PNG heatmaps decode to the expected pixels."""

import numpy as np

from keras_clip.evaluation.plots import colorize
from keras_clip.evaluation.plots import save_heatmap


def test_heatmap_png_decodes_to_the_colour_map(tmp_path):
    import tensorflow as tf

    matrix = np.array([[0.0, 1.0], [0.5, 0.25]])
    path = save_heatmap(matrix, str(tmp_path / "h.png"), cell_size=3)
    decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
    assert decoded.shape == (6, 6, 3)
    expected = np.repeat(np.repeat(colorize(matrix), 3, axis=0), 3, axis=1)
    np.testing.assert_array_equal(decoded, expected)
    colors = colorize(matrix)
    assert colors[0, 0].sum() < colors[0, 1].sum()  # low dark, high bright
    assert (colorize(np.ones((2, 2))) == colorize(np.ones((2, 2)))[0, 0]).all()
