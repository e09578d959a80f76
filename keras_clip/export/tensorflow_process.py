"""Exporting a model of any backend from a TensorFlow-backend process.

SavedModel and ONNX export trace the model with TensorFlow. A model on the
JAX or PyTorch backend is saved as `.keras`, loaded again in a child
process with `KERAS_BACKEND=tensorflow`, and exported there.

Example:

```python
export_in_tensorflow_process(
    "keras_clip.export.saved_model:export_saved_model", model, tokenizer, "served/"
)
```
"""

import json
import os
import subprocess
import sys
import tempfile


def export_in_tensorflow_process(exporter, model, tokenizer, path, *arguments):
    """Saves `model` (and `tokenizer`), then calls `exporter` (a
    "module:function" name) as `exporter(model, tokenizer, path,
    *arguments)` in a TensorFlow-backend process. For models on the other
    backends, where an exporter needs TensorFlow's tracing. Arguments must
    be JSON values."""
    with tempfile.TemporaryDirectory() as workdir:
        model_path = os.path.join(workdir, "model.keras")
        tokenizer_path = os.path.join(workdir, "tokenizer")
        model.save(model_path)
        if tokenizer is not None:
            tokenizer.save(tokenizer_path)
        module, function = exporter.split(":")
        code = (
            "import importlib, json, os, sys, keras, keras_clip\n"
            "model = keras.saving.load_model(sys.argv[1])\n"
            "tokenizer = keras_clip.Tokenizer.load(sys.argv[2]) "
            "if os.path.isdir(sys.argv[2]) else None\n"
            f"export = getattr(importlib.import_module({module!r}), {function!r})\n"
            "export(model, tokenizer, sys.argv[3], *json.loads(sys.argv[4]))\n"
        )
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        result = subprocess.run(
            [sys.executable, "-c", code, model_path, tokenizer_path, path, json.dumps(arguments)],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            lines = result.stderr.strip().splitlines()
            reason = lines[-1] if lines else f"it exited with status {result.returncode}"
            raise RuntimeError(f"Exporting from a TensorFlow-backend process failed: {reason}")
    return path
