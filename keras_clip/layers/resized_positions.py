"""A learned grid of position embeddings, resized to each image's own grid."""

from keras import ops


def triangle_weights(output_size, input_size, positions):
    """Antialiased bilinear resampling weights along one axis.

    The weights of a triangle filter (bilinear, half-pixel centres) whose
    support widens by the scale factor when shrinking, as PIL's and
    `torch.nn.functional.interpolate(..., antialias=True)`'s, normalised to
    sum to one per output position.

    Args:
        output_size: float (batch, 1), each example's output length.
        input_size: int, the source length.
        positions: float (batch, length), each output position's index along
            this axis.

    Returns:
        float32 (batch, length, input_size).
    """
    scale = input_size / output_size
    support = ops.maximum(scale, 1.0)[..., None]
    centre = ((positions + 0.5) * scale - 0.5)[..., None]
    source = ops.arange(input_size, dtype="float32")
    weights = ops.relu(1.0 - ops.abs(source - centre) / support)
    return weights / ops.sum(weights, axis=-1, keepdims=True)


def resized_position_embeddings(table, spatial_shapes, length):
    """Position embeddings of a square grid resized to each image's grid.

    The (grid, grid) table is resized with antialiased bilinear
    interpolation to every image's (rows, columns) patch grid, read in row
    order and padded to `length` positions (padding positions repeat the
    first embedding; the padding mask hides them). This is how SigLIP 2's
    NaFlex vision embeddings place patches of any aspect ratio and count.

    Args:
        table: float (grid * grid, width), the learned embeddings in row
            order.
        spatial_shapes: int (batch, 2), each image's (rows, columns) of
            patches; rows * columns <= length.
        length: int, the padded patch sequence length.

    Returns:
        float32 (batch, length, width).

    Example:

    ```python
    table = np.random.normal(size=(16, 8)).astype("float32")  # a 4x4 grid
    resized_position_embeddings(table, np.array([[2, 6]]), 16).shape  # (1, 16, 8)
    ```
    """
    grid = round(table.shape[0] ** 0.5)
    if grid * grid != table.shape[0]:
        raise ValueError(f"A position table of {table.shape[0]} rows is not a square grid.")
    sizes = ops.cast(spatial_shapes, "float32")
    rows, columns = sizes[:, :1], sizes[:, 1:]
    positions = ops.arange(length, dtype="float32")[None, :]
    row = ops.floor(positions / columns)
    column = positions - row * columns
    real = ops.cast(positions < rows * columns, "float32")
    row_weights = triangle_weights(rows, grid, row * real)
    column_weights = triangle_weights(columns, grid, column * real)
    weights = row_weights[..., :, None] * column_weights[..., None, :]
    weights = ops.reshape(weights, (-1, length, grid * grid))
    return ops.matmul(weights, ops.cast(table, "float32"))
