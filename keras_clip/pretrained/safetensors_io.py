"""safetensors files through the `safetensors` package's NumPy API.

Nothing in a safetensors file is executed on load, which is why it is the
default format here; NumPy is all it needs (no PyTorch). This module adds
what checkpoint loading wants on top: bfloat16 widened to float32 (exactly),
and errors that name the file.
"""

import numpy as np


def read_safetensors(path):
    """All tensors of a safetensors file, as a dict of NumPy arrays.

    bfloat16 tensors are returned as float32 (exactly).

    Args:
        path: str, the `.safetensors` file.

    Raises:
        ValueError: the file is truncated, or its header is malformed.

    Example:

    ```python
    write_safetensors("w.safetensors", {"w": np.ones((2, 2), "float32")})
    read_safetensors("w.safetensors")["w"].shape  # (2, 2)
    ```
    """
    import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(path)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
    return {
        name: value.astype("float32") if value.dtype.name == "bfloat16" else value
        for name, value in tensors.items()
    }


def write_safetensors(path, tensors, metadata=None):
    """Writes a dict of arrays as a safetensors file.

    Args:
        path: str, the file to write.
        tensors: dict name -> array (float, int or bool).
        metadata: optional dict of str -> str (e.g. {"format": "pt"}).

    Example:

    ```python
    write_safetensors("w.safetensors", {"w": np.ones((2, 2), "float32")})
    ```
    """
    from safetensors.numpy import save_file

    arrays = {name: np.asarray(value, order="C") for name, value in tensors.items()}
    metadata = None if metadata is None else {str(k): str(v) for k, v in metadata.items()}
    save_file(arrays, path, metadata=metadata)
