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
backend.

Towers with BatchNorm (CLIP's modified ResNet) normalise each slice with
its own statistics, as they would with a smaller batch; LayerNorm towers
(ViT, the text Transformer) give the whole batch's values.
"""

import keras
from keras import ops


def encode_in_slices(encode, inputs, micro_batches, layer):
    """`encode(inputs)` computed on `micro_batches` slices of the batch.

    Args:
        encode: function of one (batch, ...) tensor returning
            (batch, features), reading `layer`'s variables.
        inputs: the batch. Its size need not divide evenly: slices have
            ceil(batch / micro_batches) rows, the last one fewer.
        micro_batches: int >= 1. 1 calls `encode` directly.
        layer: the Keras layer or model whose variables `encode` reads.

    Returns:
        The concatenated (batch, features) outputs, equal to `encode(inputs)`
        up to floating-point rounding for per-example towers.

    Example:

    >>> embeddings = encode_in_slices(model.encode_text, token_ids, 4, model)
    """
    if micro_batches == 1:
        return encode(inputs)
    batch = ops.shape(inputs)[0]
    size = (batch + micro_batches - 1) // micro_batches
    encode_slice = _rematerialized(encode, layer)
    outputs = []
    for index in range(micro_batches):
        start = index * size
        if isinstance(batch, int) and start >= batch:
            break  # a static batch smaller than micro_batches x size
        outputs.append(encode_slice(inputs[start:start + size]))
    return ops.concatenate(outputs, axis=0)


def _rematerialized(encode, layer):
    """`encode` under `keras.remat`, as a pure function of the variables.

    The recomputation in the backward pass must neither apply a state
    update a second time (BatchNorm's moving statistics, a dropout seed)
    nor see a different state (another dropout mask); and JAX forbids a
    checkpointed function to leak its updates. So the slice runs in its own
    `StatelessScope`, taking every variable's value as an argument and
    returning the non-trainable variables' new values, which are assigned
    once, outside the rematerialised function.
    """
    trainable = list(layer.trainable_variables)
    non_trainable = list(layer.non_trainable_variables)
    variables = trainable + non_trainable

    def encode_slice(inputs):
        # The slice enters by closure: only the variables' values need
        # gradients (TensorFlow warns when asked to watch int token ids).
        def pure(*values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                outputs = encode(inputs)
            return [outputs] + [scope.get_current_value(v) for v in non_trainable]

        # Copies of the states: the recomputation must see this slice's
        # values, not the ones assigned below (torch assigns in place).
        values = [v.value for v in trainable] + [ops.copy(v.value) for v in non_trainable]
        outputs, *updates = keras.remat(pure)(*values)
        for variable, value in zip(non_trainable, updates):
            variable.assign(value)
        return outputs

    return encode_slice
