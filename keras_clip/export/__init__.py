"""Serving formats: the TF SavedModel (tokenisation and image decoding in
the graph) and ONNX (the two towers, for onnxruntime), written from a model
of any backend (`tensorflow_process` exports JAX and PyTorch models from a
TensorFlow-backend process).

`export_onnx` loads on first use (it needs the `onnx` extra).

Example:

```python
keras_clip.export.export_saved_model(model, tokenizer, "served/")
```
"""

from keras_clip.export.saved_model import export_saved_model
from keras_clip.export.saved_model import read_image_preprocessing
from keras_clip.export.tensorflow_process import export_in_tensorflow_process


def __getattr__(name):
    if name == "export_onnx":
        from keras_clip.export.onnx import export_onnx

        return export_onnx
    raise AttributeError(f"module 'keras_clip.export' has no attribute {name!r}")
