"""Contrastive batches larger than memory: towers run a slice at a time.

CLIP's loss needs every embedding of the batch at once (each example is a
negative for all others), but the towers' activations, which take the
memory, are per example. With `micro_batches=k` the training forward pass
runs each tower on k slices of the batch, each slice wrapped in
`keras.remat` (gradient checkpointing), and concatenates the embeddings.
The backward pass then recomputes one slice's activations at a time. So
the loss and its gradient are those of the whole batch, with its whole
pool of negatives (not an average of small-batch gradients), while the
activation memory is one slice's plus the (batch, embed_dim) embeddings.
This is the memory profile of GradCache (Gao et al. 2021) with one extra
forward pass per slice; Keras' own train step does the rest on every
backend. On JAX, when the slices are equal, they run inside `ops.scan`:
XLA is free to schedule independent recomputations together, and only a
loop makes it take them one at a time.

Towers with BatchNorm (CLIP's modified ResNet) normalise each slice with
its own statistics, as they would with a smaller batch; LayerNorm towers
(ViT, the text Transformer) give the whole batch's values.
"""

import keras
from keras import ops

from keras_clip.utils.checks import image_batch


def encode_in_slices(encode, inputs, micro_batches, layer):
    """`encode(inputs)` computed on `micro_batches` slices of the batch.

    Args:
        encode: function of one (batch, ...) tensor returning
            (batch, features), reading `layer`'s variables.
        inputs: the batch (a tensor, or a NaFlex dict of them). Its size
            need not divide evenly: slices have ceil(batch / micro_batches)
            rows, the last one fewer.
        micro_batches: int >= 1. 1 calls `encode` directly.
        layer: the Keras layer or model whose variables `encode` reads.

    Returns:
        The concatenated (batch, features) outputs, equal to `encode(inputs)`
        up to floating-point rounding for per-example towers.

    Example:

    ```python
    embeddings = encode_in_slices(model.encode_text, token_ids, 4, model)
    ```
    """
    if micro_batches == 1:
        return encode(inputs)
    batch = ops.shape(image_batch(inputs))[0]
    size = (batch + micro_batches - 1) // micro_batches
    encode_slice = _PureSlice(encode, layer)
    if keras.backend.backend() == "jax" and batch % micro_batches == 0:
        return encode_slice.scan(inputs, micro_batches)
    outputs = []
    for index in range(micro_batches):
        start = index * size
        if isinstance(batch, int) and start >= batch:
            break  # a static batch smaller than micro_batches x size
        rows = keras.tree.map_structure(lambda x, start=start: x[start : start + size], inputs)
        outputs.append(encode_slice(rows))
    return ops.concatenate(outputs, axis=0)


class _PureSlice:
    """`encode` on one slice under `keras.remat`, as a pure function.

    The recomputation in the backward pass must neither apply a state
    update a second time (BatchNorm's moving statistics, a dropout seed)
    nor see a different state (another dropout mask); and JAX forbids a
    checkpointed function to leak its updates. So the slice runs in its own
    `StatelessScope`, taking every variable's value as an argument and
    returning the non-trainable variables' new values, which are assigned
    once, outside the rematerialised function.
    """

    def __init__(self, encode, layer):
        self.encode = encode
        self.trainable = list(layer.trainable_variables)
        self.non_trainable = list(layer.non_trainable_variables)

    def pure(self, inputs, trainable_values, state):
        """(outputs, new state) of `encode(inputs)` with the given values."""
        mapping = list(
            zip(self.trainable + self.non_trainable, list(trainable_values) + list(state))
        )
        with keras.StatelessScope(state_mapping=mapping) as scope:
            outputs = self.encode(inputs)
        return outputs, [scope.get_current_value(v) for v in self.non_trainable]

    def _assign(self, state):
        for variable, value in zip(self.non_trainable, state):
            variable.assign(value)

    def __call__(self, inputs):
        # The slice enters by closure: only the variables' values need
        # gradients (TensorFlow warns when asked to watch int token ids).
        # Copies of the states: the recomputation must see this slice's
        # values, not the ones assigned below (torch assigns in place).
        def rematerialized(*values):
            count = len(self.trainable)
            outputs, state = self.pure(inputs, values[:count], values[count:])
            return [outputs] + state

        values = [v.value for v in self.trainable] + [ops.copy(v.value) for v in self.non_trainable]
        outputs, *state = keras.remat(rematerialized)(*values)
        self._assign(state)
        return outputs

    def scan(self, inputs, micro_batches):
        """All slices in one `ops.scan`, the state carried from slice to slice."""
        batch = ops.shape(image_batch(inputs))[0]
        slices = keras.tree.map_structure(
            lambda x: ops.reshape(x, (micro_batches, batch // micro_batches) + tuple(x.shape[1:])),
            inputs,
        )
        trainable_values = [v.value for v in self.trainable]
        step = keras.remat(lambda state, x: self.pure(x, trainable_values, state)[::-1])
        state, outputs = ops.scan(step, [v.value for v in self.non_trainable], slices)
        self._assign(state)
        return ops.reshape(outputs, (batch,) + tuple(outputs.shape[2:]))
