"""Serving formats: the TF SavedModel (tokenisation and image decoding in
the graph), ONNX (the two towers, for onnxruntime) and OpenVINO IR (the two
towers, float32 or int8), written from a model of any backend
(`tensorflow_process` exports JAX and PyTorch models from a
TensorFlow-backend process). `ExportedTowers` runs an ONNX or OpenVINO
export with the model's `predict`, and `fidelity` measures how far an
export strays from the float model.

`export_onnx`, `export_openvino` and `ExportedTowers` load on first use
(they need the `onnx` or `openvino` extra).

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
    if name == "export_openvino":
        from keras_clip.export.openvino import export_openvino

        return export_openvino
    if name == "ExportedTowers":
        from keras_clip.export.exported_towers import ExportedTowers

        return ExportedTowers
    raise AttributeError(f"module 'keras_clip.export' has no attribute {name!r}")
