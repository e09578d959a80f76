"""Skipping the random draws a checkpoint overwrites at once.

`CLIP.from_pretrained` builds a model, then assigns every weight. The random
draw of a token-embedding table is thrown away there, and it is not free:
Keras draws MetaCLIP 2's 901,629 x 1024 table (XLM-V; 3.4 GiB in float32)
through temporaries of the table's size (about three tables at the peak on
PyTorch and TensorFlow, and 4-8 s). Inside `loading_weights()` the text
encoders start their token tables as zeros instead: one allocation, the
variable itself. The values after loading are the checkpoint's either way.

Example:

```python
with loading_weights():  # the token table will start as zeros when built
    encoder = keras_clip.encoders.TextTransformer(50_000, 77, 512, 12, 8)
```
"""

import contextlib
import threading

import keras

_STATE = threading.local()


@contextlib.contextmanager
def loading_weights():
    """Layers built inside start their large tables as zeros (see the module)."""
    previous = getattr(_STATE, "loading", False)
    _STATE.loading = True
    try:
        yield
    finally:
        _STATE.loading = previous


def table_initializer(initializer):
    """`initializer` for a large table, or "zeros" inside `loading_weights()`."""
    return "zeros" if getattr(_STATE, "loading", False) else initializer


def token_embedding(vocabulary_size, width, dtype, name="token_embedding"):
    """A text tower's token table, N(0, 0.02) as CLIP's and BERT's start
    (zeros inside `loading_weights()`)."""
    return keras.layers.Embedding(
        vocabulary_size,
        width,
        embeddings_initializer=table_initializer(keras.initializers.RandomNormal(stddev=0.02)),
        dtype=dtype,
        name=name,
    )
