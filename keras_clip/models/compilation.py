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

An explicit `compile(jit_compile=...)` or `model.jit_compile = ...` wins.
The results do not change: XLA's float32 computes the same function, to
float32 rounding (`tests/test_compilation.py`).

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

    _predict_without_xla = False  # set where "auto" chose XLA on a CPU

    def _resolve_auto_jit_compile(self):
        if keras.backend.backend() != "tensorflow":
            return super()._resolve_auto_jit_compile()
        jit = tensorflow_xla_is_faster(self) and keras_supports_jit(self)
        self._note_auto_choice(jit)
        return jit

    def _note_auto_choice(self, xla):
        """Where "auto" chose XLA on TensorFlow without a GPU, predict
        runs the graph."""
        tensorflow = keras.backend.backend() == "tensorflow"
        self._predict_without_xla = bool(xla) and tensorflow and not _tensorflow_has_accelerator()

    def compile(self, *args, jit_compile="auto", **kwargs):
        super().compile(*args, jit_compile=jit_compile, **kwargs)
        # Keras' setter cleared the note; an explicit choice holds for predict too.
        self._note_auto_choice(jit_compile == "auto" and self._jit_compile is True)

    def __setattr__(self, name, value):
        # `model.jit_compile = ...` is the user's choice, predict included (a
        # property setter would not do: TensorFlow's tracking skips setting
        # an attribute to the value it already has).
        if name == "jit_compile":
            self._predict_without_xla = False
        super().__setattr__(name, value)

    def make_predict_function(self, force=False):
        if not (self.jit_compile and self._predict_without_xla):
            return super().make_predict_function(force)
        self._jit_compile = False  # read once, as the function is built
        try:
            return super().make_predict_function(force)
        finally:
            self._jit_compile = True


def tensorflow_xla_is_faster(model):
    """Whether XLA is the faster correct choice for `model` on TensorFlow."""
    import tensorflow as tf

    if getattr(model, "_distribute_strategy", None) or tf.distribute.has_strategy():
        return False
    return _tensorflow_has_accelerator() or model.dtype_policy.compute_dtype not in LOW_PRECISION


def _tensorflow_has_accelerator():
    import tensorflow as tf

    return any(d.device_type != "CPU" for d in tf.config.list_physical_devices())


def keras_supports_jit(model):
    from keras.src.trainers.trainer import model_supports_jit

    return model_supports_jit(model)
