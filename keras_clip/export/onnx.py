"""ONNX export: the image and text towers as two graphs, for onnxruntime.

`export_onnx` writes, with Keras' `export(format="onnx")` (tf2onnx),

    DIR/image_encoder.onnx   images float32 [N, S, S, 3], normalised with the
                             model's mean and std -> embeddings [N, D]
    DIR/text_encoder.onnx    token_ids int32 [N, L] -> embeddings [N, D]
    DIR/onnx_config.json     image_preprocessing (the model's
                             `ImagePreprocessing` config: image_size, mean,
                             std, resize_mode, interpolation),
                             context_length, logit_scale, logit_bias

Embeddings are L2-normalised; logits are logit_scale * image @ text.T
(+ logit_bias: SigLIP's, else 0).
Tokenisation stays outside the graphs: run `keras_clip.Tokenizer` (or the
SavedModel's `encode_text`) and feed its int32 ids. Models on the JAX and
PyTorch backends are exported from a TensorFlow-backend process.

Example:

```python
import numpy as np
import onnxruntime

export_onnx(model, "clip_onnx/")
session = onnxruntime.InferenceSession("clip_onnx/text_encoder.onnx")
token_ids = np.asarray(tokenizer(["a red circle"]), "int32")
session.run(None, {session.get_inputs()[0].name: token_ids})
```
"""

import os

import keras

from keras_clip.export.tensorflow_process import export_in_tensorflow_process
from keras_clip.export.towers import built_towers
from keras_clip.export.towers import write_tower_config
from keras_clip.utils import require

TOWER_FILES = {"image": "image_encoder.onnx", "text": "text_encoder.onnx"}
CONFIG_FILE = "onnx_config.json"


def export_onnx(model, directory, opset_version=None):
    """Writes the two towers of `model` as ONNX graphs in `directory`.

    Args:
        model: a `keras_clip.CLIP` (float32 weights).
        directory: output folder.
        opset_version: int or None (tf2onnx's default).

    Returns:
        `directory`.
    """
    require(("onnx", "onnxruntime", "tf2onnx"), "ONNX export", extra="onnx")
    if keras.backend.backend() != "tensorflow":
        return export_in_tensorflow_process(
            "keras_clip.export.onnx:_export_in_process", model, None, directory, opset_version
        )
    os.makedirs(directory, exist_ok=True)
    for tower, wrapper, spec in built_towers(model):
        wrapper.export(
            os.path.join(directory, TOWER_FILES[tower]),
            format="onnx",
            input_signature=[spec],
            opset_version=opset_version,
            verbose=False,
        )
    write_tower_config(model, os.path.join(directory, CONFIG_FILE))
    return directory


def _export_in_process(model, tokenizer, directory, opset_version):
    """`export_in_tensorflow_process`'s calling convention."""
    return export_onnx(model, directory, opset_version)
