"""safetensors files through the `safetensors` package's NumPy API.

Nothing in a safetensors file is executed on load, which is why it is the
default format here; NumPy is all it needs (no PyTorch). This module adds
what checkpoint loading wants on top: bfloat16 widened to float32 (exactly),
errors that name the file, and `SafetensorsTensors`, which reads a tensor
only when asked for it (a loader then holds one tensor at a time beside the
model, not a second copy of the checkpoint: MetaCLIP 2's text embedding
alone is 3.7 GB).
"""

import collections.abc
import json
import struct

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
    return {name: _widened(value) for name, value in tensors.items()}


def _widened(value):
    return value.astype("float32") if value.dtype.name == "bfloat16" else value


_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}  # fmt: skip


def _header(path):
    """(data start, {name: (dtype, shape, (begin, end))}) of a safetensors file."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return 8 + size, {
        name: (info["dtype"], tuple(info["shape"]), tuple(info["data_offsets"]))
        for name, info in header.items()
    }


class SafetensorsTensors(collections.abc.Mapping):
    """The tensors of safetensors files, each read from disk when asked for.

    A read-only mapping name -> NumPy array (bfloat16 read as float32) over
    one file or the shards of one checkpoint; `shape(name)` answers from
    the headers without reading the tensor. The safetensors package checks
    each file whole first; a tensor is then read with one plain file read
    into memory of its own (no memory map: mapped pages would stay resident,
    a second copy of the checkpoint, while the loader runs).

    Args:
        paths: str or list of str, the `.safetensors` files.

    Raises:
        ValueError: a file is truncated or malformed, or two shards hold
            the same tensor.

    Example:

    ```python
    write_safetensors("w.safetensors", {"logit_scale": np.array(4.6, "float32")})
    tensors = SafetensorsTensors("w.safetensors")
    tensors.shape("logit_scale")  # (), nothing read yet
    tensors["logit_scale"]  # read now
    ```
    """

    def __init__(self, paths):
        import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy)
        from safetensors import SafetensorError
        from safetensors import safe_open

        self._where = {}
        for path in [paths] if isinstance(paths, str) else paths:
            try:
                with safe_open(path, framework="numpy"):  # validates the whole layout
                    pass
            except SafetensorError as error:
                raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
            start, tensors = _header(path)
            for name, (dtype, shape, (begin, _)) in tensors.items():
                if name in self._where:
                    raise ValueError(
                        f"Tensor {name!r} is in both {self._where[name][0]} and {path}."
                    )
                if dtype not in _DTYPES:
                    raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype}.")
                self._where[name] = (path, _DTYPES[dtype], shape, start + begin)

    def __getitem__(self, name):
        path, dtype, shape, offset = self._where[name]
        count = int(np.prod(shape, dtype="int64"))
        value = np.fromfile(path, dtype=dtype, count=count, offset=offset).reshape(shape)
        return _widened(value)

    def __contains__(self, name):  # Mapping's default would read the tensor
        return name in self._where

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)

    def shape(self, name):
        return self._where[name][2]


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
