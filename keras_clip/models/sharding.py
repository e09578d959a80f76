"""Sharded weights on JAX: fully sharded data parallelism (FSDP) through
`keras.distribution`.

Every device holds the whole model under data parallelism; FSDP splits the
weights and the optimizer's state over the devices as well, along the same
mesh axis as the batch (big_vision's `fsdp` rule, open_clip's FSDP2). XLA's
SPMD partitioner gathers each weight where a layer uses it and
reduce-scatters its gradient, so a device keeps about 1/n of the weights
and AdamW moments. The loss still sees the whole global batch: InfoNCE and
SigLIP contrast every pair, as on one device.

JAX only: Keras' `ModelParallel` family runs on JAX; TensorFlow keeps
`tf.distribute` (whole weights per replica) and PyTorch has no
`keras.distribution` backend.
"""

import math

import keras


class FullyShardedDataParallel(keras.distribution.DataParallel):
    """Data parallelism whose weights and optimizer state are sharded too.

    The batch is split along the mesh's one axis, as `DataParallel` splits
    it, and so is every variable of at least `min_size` elements: along its
    largest dimension that the number of devices divides. Smaller variables
    (biases, norms, the logit scale) and those no dimension of which divides
    stay replicated. Variables are sharded as they are created, so set the
    distribution before building the model and its optimizer (weights
    loaded afterwards, by `set_weights` or `load_weights`, take each
    variable's sharding; an optimizer made before would hold its step
    counter on one device, and JAX refuses the mix).

    Args:
        devices: the devices to use (default: every device
            `keras.distribution.list_devices()` names).
        min_size: int. Variables with fewer elements stay replicated.
        auto_shard_dataset: bool, as in `keras.distribution.DataParallel`.

    Example:

    ```python
    keras.distribution.set_distribution(FullyShardedDataParallel())
    model = keras_clip.CLIP.from_architecture("ViT-B-32")  # created sharded
    model.compile()
    model.fit(train)  # each global batch is split over the devices
    ```
    """

    def __init__(self, devices=None, min_size=4096, auto_shard_dataset=True):
        if keras.backend.backend() != "jax":
            raise ValueError(
                "Sharded weights (FullyShardedDataParallel) need the JAX backend; got "
                f"{keras.backend.backend()!r}. On TensorFlow use tf.distribute's "
                "MirroredStrategy (whole weights on each replica)."
            )
        super().__init__(devices=devices, auto_shard_dataset=auto_shard_dataset)
        self.min_size = int(min_size)

    @property
    def num_devices(self):
        return int(math.prod(self.device_mesh.shape))

    def get_tensor_layout(self, path):
        # Every layer output inside a tower keeps its batch split over the
        # devices (its leading dimension); the weights are gathered to it.
        if "_encoder/" in path:
            return keras.distribution.TensorLayout((self.batch_dim_name,), self.device_mesh)
        return None

    def get_variable_layout(self, variable):
        axes = fsdp_axes(variable.shape, self.num_devices, self.batch_dim_name, self.min_size)
        return keras.distribution.TensorLayout(axes, self.device_mesh)


def fsdp_axes(shape, num_devices, axis_name="batch", min_size=4096):
    """The sharding spec FSDP gives a variable of `shape`: `axis_name` on its
    largest dimension that `num_devices` divides (the first of equal ones),
    None elsewhere; all None when it is smaller than `min_size` or no
    dimension divides.

    Example:

    ```python
    fsdp_axes((768, 3072), 8)   # (None, "batch")
    fsdp_axes((768,), 8)        # (None,): too small to be worth it
    ```
    """
    shape = tuple(int(size) for size in shape)
    axes = [None] * len(shape)
    if num_devices <= 1 or math.prod(shape) < min_size:
        return tuple(axes)
    candidates = [i for i, size in enumerate(shape) if size % num_devices == 0]
    if candidates:
        axes[max(candidates, key=lambda i: (shape[i], -i))] = axis_name
    return tuple(axes)


def train_step_memory(model, input_shapes, distribution=None):
    """XLA's memory analysis of one training step of `model` (the function
    `fit` compiles), per device, compiled without running it: whether a
    model, its optimizer and a batch fit, before any memory is spent.

    The model may be built inside a `keras.StatelessScope` (shapes, no
    values), so that no weight is ever allocated.

    Args:
        model: a compiled model whose optimizer is built, on JAX.
        input_shapes: dict, each input's name to `(shape, dtype)` of the
            global batch (e.g. `{"images": ((64, 224, 224, 3), "float32"),
            "token_ids": ((64, 77), "int32")}`).
        distribution: a `keras.distribution.Distribution` (default: the
            one set), which places every variable and splits the batch.

    Returns:
        dict of bytes per device: "argument" (weights, optimizer state,
        metrics and the batch slice), "temp" (activations, gathered weights,
        scratch) and "output".

    Example:

    ```python
    memory = train_step_memory(model, {"images": ((64, 32, 32, 3), "float32"),
                                       "token_ids": ((64, 16), "int32")})
    ```
    """
    import jax

    distribution = distribution or keras.distribution.distribution()
    if distribution is None:
        raise ValueError("Set a distribution (or pass one) to place the variables.")

    def variable(v):
        sharding = distribution.get_variable_layout(v).backend_layout
        return jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=sharding)

    def batch(shape, dtype):
        sharding = distribution.get_data_layout(shape).backend_layout
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

    state = tuple(
        [variable(v) for v in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )
    inputs = {name: batch(tuple(shape), dtype) for name, (shape, dtype) in input_shapes.items()}
    memory = jax.jit(model.train_step).lower(state, (inputs,)).compile().memory_analysis()
    return {
        "argument": memory.argument_size_in_bytes,
        "temp": memory.temp_size_in_bytes,
        "output": memory.output_size_in_bytes,
    }
