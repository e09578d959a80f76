"""The compiler a model's steps run under when the user does not choose.

Keras resolves `jit_compile="auto"` (the default of `compile`, and what an
uncompiled model's `predict` uses) to XLA off for TensorFlow on a CPU-only
machine. For these models XLA is the faster correct choice there too
(float32 training steps about 35% shorter on bench-vit), so `FastestJit`
resolves "auto" to:

- TensorFlow: XLA on for training and evaluation steps, except
  - `predict` on a machine without a GPU, which runs TensorFlow's graph:
    there XLA was not faster for inference (ViT-B/32, 32 images: 24.5
    images/s steady without it; with it 12-23 and a first call of 4.6 s
    instead of 2.6);
  - under a `tf.distribute` strategy, where XLA fails for these models
    (a variable of replica 1 read from CPU:0 under `MirroredStrategy` on
    logical CPU devices; Keras turns it off there too);
  - with a bfloat16 or float16 compute dtype on a machine without a GPU:
    XLA:CPU computes low-precision matmuls without the CPU's bf16 units
    (measured 250 GFLOP/s against oneDNN's 1,220 on an AMX host), so the
    TensorFlow kernels run instead.
- JAX: jit (as Keras).
- PyTorch: eager (as Keras; `torch.compile` recompiles often and failed
  on a strided "same" convolution).

`compile` resolves "auto" before it calls Keras' `compile`, so Keras only
ever sees an explicit choice; an explicit `compile(jit_compile=...)` wins,
for `predict` too. `model.predict_jit_compile` ("auto", True or False)
chooses for `predict` alone. A model never compiled predicts with Keras'
own default. The results do not change: XLA's float32 computes the same
function, to float32 rounding (`tests/test_compilation.py`).

Example:

```python
model = keras_clip.CLIP.from_architecture("tiny-vit")
model.compile()
model.jit_compile  # True on TensorFlow (no strategy) and JAX, False on PyTorch
```
"""

import keras

LOW_PRECISION = ("bfloat16", "float16")


class FastestJit:
    """Model mixin: `jit_compile="auto"` resolves as the module says."""

    # "auto", True or False: the compiler of `predict` (see the module).
    predict_jit_compile = "auto"

    def compile(self, *args, jit_compile="auto", **kwargs):
        self.predict_jit_compile = jit_compile
        if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
            jit_compile = tensorflow_xla_is_faster(self)
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    def make_predict_function(self, force=False):
        chosen = self.jit_compile
        wanted = self.predict_jit_compile
        if wanted == "auto":
            on_cpu = keras.backend.backend() == "tensorflow" and not _tensorflow_has_accelerator()
            wanted = False if on_cpu else chosen
        if wanted == chosen:
            return super().make_predict_function(force)
        self.jit_compile = wanted  # read once, as the function is built
        try:
            return super().make_predict_function(force)
        finally:
            self.jit_compile = chosen


def tensorflow_xla_is_faster(model):
    """Whether XLA is the faster correct choice for `model` on TensorFlow."""
    import tensorflow as tf

    distributed = tf.distribute.has_strategy() or (
        model.distribute_strategy is not tf.distribute.get_strategy()
    )
    if distributed:
        return False
    return _tensorflow_has_accelerator() or model.dtype_policy.compute_dtype not in LOW_PRECISION


def _tensorflow_has_accelerator():
    import tensorflow as tf

    return any(d.device_type != "CPU" for d in tf.config.list_physical_devices())
