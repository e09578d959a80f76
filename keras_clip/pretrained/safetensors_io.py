"""Reading and writing the safetensors format with NumPy alone.

A safetensors file is an 8-byte little-endian header length, a JSON header
mapping each tensor name to its dtype, shape and byte range (plus an
optional "__metadata__" dict of strings), and the raw little-endian bytes.
Nothing in it is executed on load, which is why it is the default format
here; this module needs neither PyTorch nor the `safetensors` package.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "BOOL": "bool",
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20


def _numpy_dtype(name):
    if name == "bfloat16":
        import ml_dtypes  # installed with TensorFlow and JAX

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name).newbyteorder("<")


def read_safetensors(path):
    """All tensors of a safetensors file, as a dict of NumPy arrays.

    bfloat16 tensors are returned as float32 (exactly).

    Args:
        path: str, the `.safetensors` file.

    Raises:
        ValueError: the file is truncated or its header is malformed.

    Example:

    >>> tensors = read_safetensors("model.safetensors")
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (shorter than 8 bytes).")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > min(_MAX_HEADER, len(data) - 8):
        raise ValueError(f"{path} is not a safetensors file (bad header length).")
    try:
        header = json.loads(data[8:8 + header_size])
    except ValueError as error:
        raise ValueError(f"{path} has a malformed safetensors header: {error}") from None
    body = memoryview(data)[8 + header_size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry.get("dtype") not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype "
                             f"{entry.get('dtype')!r}.")
        start, end = entry["data_offsets"]
        dtype = _numpy_dtype(_DTYPES[entry["dtype"]])
        shape = tuple(entry["shape"])
        if not 0 <= start <= end <= len(body) or end - start != dtype.itemsize * int(
                np.prod(shape, dtype="int64")):
            raise ValueError(f"{path}: tensor {name!r} lies outside the file "
                             "(truncated or corrupt).")
        array = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
        if _DTYPES[entry["dtype"]] == "bfloat16":
            array = array.astype("float32")
        tensors[name] = array.astype(array.dtype.newbyteorder("="))
    return tensors


def write_safetensors(path, tensors, metadata=None):
    """Writes a dict of arrays as a safetensors file (names sorted).

    Args:
        path: str, the file to write.
        tensors: dict name -> array (float, int or bool).
        metadata: optional dict of str -> str (e.g. {"format": "pt"}).

    Example:

    >>> write_safetensors("model.safetensors", {"w": np.ones((2, 2), "float32")})
    """
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        dtype_name = str(array.dtype)
        if dtype_name not in _NAMES:
            raise ValueError(f"Cannot write tensor {name!r} of dtype {dtype_name}.")
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _NAMES[dtype_name], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)
