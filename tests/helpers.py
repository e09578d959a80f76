"""Backend-neutral helpers for the tests: gradients and tiny data."""

import sys

import keras
import numpy as np


def gradients(fn, *arrays):
    """Gradients of the scalar `fn(*tensors)` w.r.t. each float32 input
    (zeros for an input the value does not depend on)."""
    backend = keras.backend.backend()
    arrays = [np.asarray(a, "float32") for a in arrays]
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(a) for a in arrays]
        with tf.GradientTape() as tape:
            value = fn(*variables)
        grads = tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [g.numpy() for g in grads]
    if backend == "jax":
        import jax

        grads = jax.grad(lambda *a: fn(*a), argnums=tuple(range(len(arrays))))(*arrays)
        return [np.asarray(g) for g in grads]
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*tensors).backward()
    return [np.zeros_like(a) if t.grad is None else t.grad.numpy() for a, t in zip(arrays, tensors)]


def finite_differences(fn, *arrays, eps=1e-6):
    """Central differences of a float64 NumPy function, per input."""
    arrays = [np.asarray(a, "float64") for a in arrays]
    result = []
    for index, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += eps
            up = fn(*shifted)
            shifted[index][position] -= 2 * eps
            down = fn(*shifted)
            grad[position] = (up - down) / (2 * eps)
        result.append(grad)
    return result


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def tiny_batch(model_config=None, batch=8, seed=0, image_size=32, context=16, vocabulary=100):
    """A fixed batch of float images and token ids ending in the largest id."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, image_size, image_size, 3)).astype("float32")
    token_ids = rng.integers(2, vocabulary - 1, size=(batch, context)).astype("int32")
    lengths = rng.integers(3, context, size=batch)
    for row, length in enumerate(lengths):
        token_ids[row, length] = vocabulary - 1
        token_ids[row, length + 1 :] = 0
    return {"images": images, "token_ids": token_ids}


def import_open_clip():
    """open_clip (a test extra), or skip. torchvision's wheel beside the CPU
    torch cannot load its C ops, and its import registers fake kernels for
    two of them; declaring the two schemas first lets the import through
    (open_clip uses none of torchvision's C ops)."""
    import pytest
    import torch

    if "torchvision" not in sys.modules:
        try:
            library = torch.library.Library("torchvision", "DEF")
            for name in ("nms", "qnms"):
                library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _LIBRARIES.append(library)
        except RuntimeError:  # already declared, or the C ops did load
            pass
    return pytest.importorskip("open_clip")


_LIBRARIES = []  # keeps the declared torchvision schemas alive
