"""A model's training state (weights, non-trainable state, optimizer
variables) written and read shard by shard with Orbax, on JAX.

Under `FullyShardedDataParallel` each device holds a slice of every large
weight and AdamW moment. `model.save_weights` gathers them all on one
host first, which fails once the model outgrows the host, and cannot work
across hosts. Here each process writes only the shards its own devices
hold (Orbax's OCDBT format, through TensorStore), and reading builds each
variable with the sharding the current model gives it: a checkpoint
written on 8 devices restores onto 4, or onto one.

`StepCheckpoint(sharded=True)` uses these two functions; its own folder
rename keeps the checkpoint atomic. Needs `orbax-checkpoint`
(`pip install 'keras-clip[jax]'`).

Example:

```python
save_sharded_state(model, "ckpt/state")        # every process calls it
restore_sharded_state(new_model, "ckpt/state")  # any device count
```
"""

import keras


def save_sharded_state(model, path):
    """Writes `model`'s state to the folder `path` (which must not exist),
    each process its own shards; returns when every file is written.

    Args:
        model: a built Keras model on the JAX backend (its optimizer's
            variables are included when it has one).
        path: str, a folder every process can reach (on several hosts: a
            shared file system or a bucket Orbax can write).
    """
    checkpointer = _checkpointer()
    checkpointer.save(path, _state_tree(model))
    checkpointer.wait_until_finished()


def restore_sharded_state(model, path):
    """Reads a state written by `save_sharded_state` into `model`, each
    variable placed with its current sharding (so any device count works).

    Args:
        model: a built Keras model with the saved model's variables (and
            its optimizer built, when the state has optimizer variables).
        path: str, the folder written by `save_sharded_state`.

    Raises:
        ValueError: naming the first saved variable whose count, shape or
            dtype differs from the model's.
    """
    import jax

    variables = _variables(model)
    checkpointer = _checkpointer()
    _check_matches(checkpointer.metadata(path).item_metadata, variables, path)
    target = {
        part: {
            key: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.value.sharding)
            for key, v in named.items()
        }
        for part, named in variables.items()
    }
    restored = checkpointer.restore(path, target)
    for part, named in variables.items():
        for key, variable in named.items():
            variable.assign(restored[part][key])


def _check_matches(saved, variables, path):
    """Names the first variable whose saved shape or dtype differs (before
    any reading: Orbax's own refusal leaves its event loop complaining)."""
    for part, named in variables.items():
        stored = saved.get(part, {})
        if len(stored) != len(named):
            raise ValueError(
                f"The state in {path} has {len(stored)} {part} variables; this model has "
                f"{len(named)} (a different architecture, or an optimizer not built yet)."
            )
        for key, variable in named.items():
            entry = stored.get(key)
            shape = tuple(getattr(entry, "shape", ()) or ())
            dtype = str(getattr(entry, "dtype", ""))
            if entry is None or shape != tuple(variable.shape) or dtype != variable.dtype:
                raise ValueError(
                    f"The state in {path} does not match this model: {part} variable {key} "
                    f"({variable.path}) is {tuple(variable.shape)} {variable.dtype} here, "
                    f"{shape} {dtype} in the checkpoint."
                )


def _state_tree(model):
    return {
        part: {key: v.value for key, v in named.items()}
        for part, named in _variables(model).items()
    }


def _variables(model):
    """The model's and its optimizer's variables, keyed by their order (as
    `save_weights` matches them: layer names, which Keras numbers per
    process, would not match in another run)."""
    if keras.backend.backend() != "jax":
        raise ValueError(
            "Sharded checkpoints need the JAX backend (Orbax writes JAX arrays shard by "
            f"shard); got {keras.backend.backend()!r}. Use StepCheckpoint(sharded=False)."
        )
    parts = {"model": model.variables}
    if model.optimizer is not None and model.optimizer.variables:
        parts["optimizer"] = model.optimizer.variables
    return {
        part: {f"{i:06d}": v for i, v in enumerate(variables)} for part, variables in parts.items()
    }


def require_orbax():
    """Raises ImportError, saying what to install, when Orbax is missing."""
    try:
        import orbax.checkpoint as orbax
    except ImportError:
        raise ImportError(
            "Sharded checkpoints need orbax-checkpoint: pip install 'keras-clip[jax]'."
        ) from None
    return orbax


def _checkpointer():
    return require_orbax().StandardCheckpointer()
