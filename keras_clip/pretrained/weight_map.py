"""How a checkpoint's named tensors map onto a model's variables.

A weight map is a list of `Entry`s. Each ties one Keras variable to the
checkpoint tensors it is made from (usually one; three for a query/key/
value projection that a checkpoint stores apart) and to the conversions
between the two layouts (PyTorch's Linear stores (out, in), Keras' Dense
(in, out); PyTorch's Conv2d (out, in, kh, kw), Keras' (kh, kw, in, out)).
`load_weight_map` checks the whole checkpoint before assigning anything,
and `export_weight_map` writes the model back in the checkpoint's layout.
"""

import collections

import keras
import numpy as np
from keras import ops

Entry = collections.namedtuple("Entry", ["variable", "names", "to_keras", "from_keras"])


def _identity(array):
    return array


def tensor(variable, name, transpose=False):
    """One variable from one tensor, optionally transposed (2-D)."""
    if transpose:
        return Entry(variable, (name,), lambda a: a.T, lambda a: (a.T,))
    return Entry(variable, (name,), _identity, lambda a: (a,))


def dense(layer, weight, bias=None):
    """A Keras Dense from a PyTorch Linear's weight (out, in) and bias.

    With one name and no `bias`, `weight` is the Linear's prefix: its
    tensors are "{weight}.weight" and "{weight}.bias".
    """
    if bias is None and layer.use_bias:
        weight, bias = f"{weight}.weight", f"{weight}.bias"
    entries = [tensor(layer.kernel, weight, transpose=True)]
    if layer.use_bias:
        entries.append(tensor(layer.bias, bias))
    return entries


def split_dense(layer, prefixes, sizes=None):
    """A fused Dense (e.g. query, key and value) from separate Linears,
    of equal widths or of output widths `sizes`."""

    def split(array, axis):
        if sizes is None:
            return tuple(np.split(array, len(prefixes), axis=axis))
        return tuple(np.split(array, np.cumsum(sizes)[:-1], axis=axis))

    weights = tuple(f"{p}.weight" for p in prefixes)
    biases = tuple(f"{p}.bias" for p in prefixes)
    return [
        Entry(
            layer.kernel,
            weights,
            lambda *a: np.concatenate([x.T for x in a], axis=1),
            lambda a: tuple(x.T for x in split(a, 1)),
        ),
        Entry(layer.bias, biases, lambda *a: np.concatenate(a, axis=0), lambda a: split(a, 0)),
    ]


def reshaped(variable, name, shape):
    """One variable from a tensor of another shape (e.g. timm's (1, 1, width)
    class token); written back as `shape`."""
    return Entry(
        variable, (name,), lambda a: a.reshape(tuple(variable.shape)), lambda a: (a.reshape(shape),)
    )


def layer_norm(layer, prefix):
    return [tensor(layer.gamma, f"{prefix}.weight"), tensor(layer.beta, f"{prefix}.bias")]


def batch_norm(layer, prefix):
    return [
        tensor(layer.gamma, f"{prefix}.weight"),
        tensor(layer.beta, f"{prefix}.bias"),
        tensor(layer.moving_mean, f"{prefix}.running_mean"),
        tensor(layer.moving_variance, f"{prefix}.running_var"),
    ]


def conv(layer, name, depthwise=False):
    """A Keras convolution's kernel from a PyTorch Conv2d weight: (out, in,
    kh, kw) to (kh, kw, in, out); a depthwise one's (channels * multiplier,
    1, kh, kw) to (kh, kw, channels, multiplier). The bias, if any, is its
    own `tensor` entry."""
    if depthwise:
        kh, kw, channels, multiplier = tuple(layer.kernel.shape)
        return [
            Entry(
                layer.kernel,
                (name,),
                lambda a: a.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1),
                lambda a: (a.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw),),
            )
        ]
    return [
        Entry(
            layer.kernel,
            (name,),
            lambda a: a.transpose(2, 3, 1, 0),
            lambda a: (a.transpose(3, 2, 0, 1),),
        )
    ]


def biased_conv(layer, prefix, depthwise=False):
    """A biased Keras convolution from a PyTorch Conv2d's `prefix`.weight
    and `prefix`.bias (see `conv`)."""
    return conv(layer, f"{prefix}.weight", depthwise) + [tensor(layer.bias, f"{prefix}.bias")]


def load_weight_map(entries, tensors, source, ignored=()):
    """Assigns checkpoint `tensors` to the model, all or nothing.

    Args:
        entries: the weight map.
        tensors: mapping name -> NumPy array, the checkpoint (a
            `SafetensorsTensors` is read one tensor at a time).
        source: str naming the checkpoint in error messages.
        ignored: predicate names that may be present and are not weights
            (e.g. buffers such as "position_ids"), as a function name -> bool.

    Raises:
        ValueError: naming the first tensor that is missing, unexpected or
            of the wrong shape; no variable has been changed then.
    """
    expected = [name for entry in entries for name in entry.names]
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise ValueError(
            f"{source}: tensor {missing[0]!r} is missing"
            + (f" ({len(missing)} missing in all)" if len(missing) > 1 else "")
            + "; the checkpoint does not match the architecture."
        )
    expected = set(expected)
    unexpected = sorted(n for n in tensors if n not in expected and not (ignored and ignored(n)))
    if unexpected:
        raise ValueError(
            f"{source}: unexpected tensor {unexpected[0]!r}"
            + (f" ({len(unexpected)} unexpected in all)" if len(unexpected) > 1 else "")
            + "; the checkpoint does not match the architecture."
        )
    for entry in entries:  # shapes first: a bad checkpoint changes nothing
        shapes = [_stored_shape(tensors, name) for name in entry.names]
        # Zero-stride stand-ins: the conversion's shape without the data.
        stand_ins = [np.broadcast_to(np.zeros((), "float32"), shape) for shape in shapes]
        try:
            value = entry.to_keras(*stand_ins)
        except ValueError:
            value = None
        if value is None or tuple(value.shape) != tuple(entry.variable.shape):
            found = ", ".join(f"{n} {shape}" for n, shape in zip(entry.names, shapes))
            raise ValueError(
                f"{source}: tensor {entry.names[0]!r} has the wrong shape ({found}); "
                f"the model's {entry.variable.path} needs {tuple(entry.variable.shape)}."
            )
    for entry in entries:  # then one tensor at a time, read when it is assigned
        arrays = [np.asarray(tensors[name], "float32") for name in entry.names]
        assign_array(entry.variable, np.asarray(entry.to_keras(*arrays), entry.variable.dtype))
        del arrays


# TensorFlow assigns a large array in row blocks of about this size.
_BLOCK_BYTES = 64 * 2**20


def assign_array(variable, array):
    """`variable.assign(array)` without a transient copy of the array.

    Keras converts a NumPy value before assigning it: on PyTorch through
    `np.array` (a copy), on TensorFlow through `tf.convert_to_tensor` (two
    copies, one kept by the allocator afterwards). For MetaCLIP 2's 3.4 GiB
    token table that is 3.4-7 GiB more at the peak and about 10 s. PyTorch
    gets a tensor sharing the array's memory; TensorFlow gets row blocks
    written into the variable in place (outside a distribution strategy);
    JAX's own assign copies once.
    """
    backend = keras.backend.backend()
    if backend == "torch" and array.dtype.kind in "fiub":  # not ml_dtypes' bfloat16
        import torch

        variable.assign(torch.from_numpy(array if array.flags.writeable else array.copy()))
    elif backend == "tensorflow" and array.ndim and array.nbytes > _BLOCK_BYTES:
        _assign_tensorflow_blocks(variable, array)
    else:
        variable.assign(array)


def _assign_tensorflow_blocks(variable, array):
    import tensorflow as tf

    target = variable.value
    if tf.distribute.has_strategy() or not hasattr(target, "handle"):
        variable.assign(array)
        return
    rows = max(1, _BLOCK_BYTES * len(array) // array.nbytes)
    for start in range(0, len(array), rows):
        stop = min(start + rows, len(array))
        # A sliced read (`target[a:b].assign`) would pin the whole buffer:
        # every block would then copy the variable (copy-on-write).
        tf.raw_ops.ResourceStridedSliceAssign(
            ref=target.handle,
            begin=[start] + [0] * (array.ndim - 1),
            end=[stop, *array.shape[1:]],
            strides=[1] * array.ndim,
            value=array[start:stop],
        )


def _stored_shape(tensors, name):
    """A checkpoint tensor's shape, without reading it where the mapping
    can say (`SafetensorsTensors.shape`)."""
    shape = getattr(tensors, "shape", None)
    return tuple(shape(name)) if callable(shape) else tuple(np.shape(tensors[name]))


def export_weight_map(entries):
    """The model's variables in the checkpoint's layout: dict name -> array."""
    tensors = {}
    for entry in entries:
        value = np.asarray(ops.convert_to_numpy(entry.variable), "float32")
        for name, array in zip(entry.names, entry.from_keras(value)):
            tensors[name] = np.array(array, order="C")  # 0-d stays 0-d
    return tensors
