"""Reading checkpoint files into NumPy, safely.

safetensors files are read without PyTorch (`safetensors_io`, on the safetensors package). Pickled
PyTorch files (`.bin`, `.pt`, `.pth`) can run code when unpickled, so they
are read only through `torch.load(weights_only=True)`, which refuses
anything but tensors and plain containers; OpenAI's original checkpoints
are TorchScript archives, read with `torch.jit.load` (no pickled Python
objects). Both need PyTorch; without it the error says so.
"""

import json
import os
import zipfile

import numpy as np

from keras_clip.pretrained.safetensors_io import SafetensorsTensors

PICKLE_SUFFIXES = (".bin", ".pt", ".pth")


def _torch(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{path} is a pickled PyTorch file; reading it needs PyTorch "
            "(pip install torch==2.13.0 installs a CPU build), or convert it to "
            ".safetensors, which keras-clip reads without PyTorch."
        ) from None
    return torch


def is_torchscript(path):
    """Whether `path` is a TorchScript archive (OpenAI's original files)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def read_state_dict(path):
    """A checkpoint file's tensors: a mapping name -> float32/int NumPy
    array (a safetensors file's are read when asked for, see
    `SafetensorsTensors`).

    Args:
        path: a `.safetensors` file, or a PyTorch `.bin` / `.pt` / `.pth`
            state dict or TorchScript archive.

    Raises:
        ValueError: an unknown suffix, or a pickle that holds more than
            tensors (refused by `weights_only=True`).
        ImportError: a PyTorch file without PyTorch installed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    if path.endswith(".safetensors"):
        return SafetensorsTensors(path)
    if not path.endswith(PICKLE_SUFFIXES):
        raise ValueError(
            f"Unknown checkpoint file {path}: expected .safetensors, "
            f"or {', '.join(PICKLE_SUFFIXES)} (PyTorch)."
        )
    torch = _torch(path)
    if is_torchscript(path):
        state = torch.jit.load(path, map_location="cpu").state_dict()
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises UnpicklingError and others
            raise ValueError(
                f"{path} could not be read with torch.load(weights_only=True): it "
                f"holds more than tensors ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]})."
            ) from None
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__}).")
    tensors = {}
    for name, value in state.items():
        if name.startswith("module."):  # saved from DistributedDataParallel
            name = name[len("module.") :]
        if hasattr(value, "detach"):
            tensors[name] = (
                value.detach()
                .to(torch.float32 if value.is_floating_point() else value.dtype)
                .numpy()
            )
        else:
            tensors[name] = np.asarray(value)
    return tensors


def read_json(path):
    with open(path) as f:
        return json.load(f)
