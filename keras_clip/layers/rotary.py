"""Two-dimensional (axial) rotary position embeddings, as EVA-02 and PE use.

Each attention head's features are rotated in pairs by angles that grow
with a patch's column and row: the first half of the pairs follows one
axis, the second half the other (timm's "cat" RoPE with interleaved pairs,
`RotaryEmbeddingCat`). Queries and keys rotated this way score each other
by their relative position. The angles are fixed by the grid, so the
tables are computed once, in NumPy, when the tower is built.

Example:

```python
sin, cos = axial_rotary_tables(grid_size=14, head_dim=64)
sin.shape  # (196, 64)
queries = np.ones((2, 196, 4, 64), "float32")  # (batch, patches, heads, head_dim)
apply_rotary(queries, sin, cos).shape  # (2, 196, 4, 64)
```
"""

import numpy as np
from keras import ops

INDEXINGS = ("ij", "xy")


def axial_rotary_tables(
    grid_size, head_dim, reference_grid=None, offset=0.0, indexing="ij", temperature=10000.0
):
    """Sines and cosines of every patch's rotation angles.

    Args:
        grid_size: int. Patches per side of the (square) grid.
        head_dim: int. Features per attention head; a multiple of 4.
        reference_grid: int or None. Positions are rescaled to a grid of
            this side (EVA's rule for fine-tuning at another resolution:
            the pretraining grid); None keeps patch indices.
        offset: float. Added to every index before rescaling (PE: 1).
        indexing: "ij" (row angles first) or "xy" (column angles first).
        temperature: float. Frequencies are temperature ** (-k / bands).

    Returns:
        (sin, cos): float32 NumPy arrays (grid_size**2, head_dim), patches
        in row-major order, each pair's angle repeated twice.
    """
    if head_dim % 4:
        raise ValueError(f"Axial rotary embeddings need head_dim divisible by 4, got {head_dim}.")
    if indexing not in INDEXINGS:
        raise ValueError(f"Unknown indexing {indexing!r}; expected one of {INDEXINGS}.")
    bands = head_dim // 4
    exponents = np.arange(bands, dtype=np.float32) / np.float32(bands)
    frequencies = (np.float32(1.0) / np.float32(temperature) ** exponents).astype(np.float32)
    positions = np.arange(grid_size, dtype=np.float32) + np.float32(offset)
    if reference_grid is not None:
        positions = positions / np.float32(grid_size) * np.float32(reference_grid)
    rows, columns = np.meshgrid(positions, positions, indexing="ij")
    first, second = (rows, columns) if indexing == "ij" else (columns, rows)
    grid = np.stack([first, second], axis=-1)  # (grid, grid, 2)
    angles = (grid[..., None] * frequencies).astype(np.float32)  # (grid, grid, 2, bands)
    angles = np.repeat(angles.reshape(grid_size * grid_size, 2 * bands), 2, axis=-1)
    return np.sin(angles).astype(np.float32), np.cos(angles).astype(np.float32)


def apply_rotary(x, sin, cos):
    """Rotates the interleaved feature pairs of `x` (batch, tokens, heads,
    head_dim) by a table's angles ((tokens, head_dim) sin and cos)."""
    x = ops.convert_to_tensor(x)
    shape = ops.shape(x)
    pairs = ops.reshape(x, (shape[0], shape[1], shape[2], x.shape[-1] // 2, 2))
    rotated = ops.stack([-pairs[..., 1], pairs[..., 0]], axis=-1)
    rotated = ops.reshape(rotated, shape)
    sin = ops.cast(sin, x.dtype)[None, :, None, :]
    cos = ops.cast(cos, x.dtype)[None, :, None, :]
    return x * cos + rotated * sin
