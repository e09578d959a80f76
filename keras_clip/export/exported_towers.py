"""Exported towers, run by OpenVINO or ONNX Runtime, with the part of a
`CLIP` model's interface that inference and evaluation use.

`ExportedTowers(directory)` reads what `export_openvino` or `export_onnx`
wrote and answers `predict`, `predict_on_batch`, `logit_scale`,
`logit_bias` and `image_preprocessing` as a `keras_clip.CLIP` does, so the
zero-shot classifier, the evaluation sets and the fidelity report run on
the export unchanged.

Example:

```python
towers = ExportedTowers("clip_int8/")            # OpenVINO or ONNX: by the files
classifier = ZeroShotClassifier(towers, tokenizer, ["cat", "dog"])
classifier.top_k(uint8_images)
towers.encode_texts(["a photo of a cat."])      # with the tokenizer graph
```
"""

import json
import os

import numpy as np

from keras_clip.export import onnx as onnx_export
from keras_clip.export import openvino as openvino_export
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.preprocessing import images_for_model
from keras_clip.utils import require

# Each runtime: its exporter's config file, and the tower files beside it.
RUNTIMES = {
    "openvino": (openvino_export.CONFIG_FILE, openvino_export.TOWER_FILES),
    "onnxruntime": (onnx_export.CONFIG_FILE, onnx_export.TOWER_FILES),
}
PRECISIONS = (None, "f32", "bf16")


class ExportedTowers:
    """The image and text towers of an exported model, ready to run.

    Args:
        directory: a folder written by `export_openvino` (run by OpenVINO)
            or `export_onnx` (run by ONNX Runtime).
        precision: OpenVINO only: None for OpenVINO's choice on this CPU
            (bfloat16 where it has AMX or AVX512-BF16, else float32), "f32"
            or "bf16". `self.precision` says what runs.
        batch_size: int. Largest batch handed to the runtime at once.

    `self.tokenizer` is the export's own tokenizer graph (strings ->
    int32 token ids) where `export_openvino` wrote one, else None.

    Example:

    ```python
    towers = ExportedTowers("clip_openvino/", precision="f32")
    towers.predict({"token_ids": token_ids})["text_embeddings"]
    ```
    """

    def __init__(self, directory, precision=None, batch_size=64):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        found = [
            name
            for name, (config_file, _) in RUNTIMES.items()
            if os.path.exists(os.path.join(directory, config_file))
        ]
        if not found:
            expected = " or ".join(config for config, _ in RUNTIMES.values())
            raise ValueError(f"{directory!r} holds no exported towers (no {expected}).")
        self.runtime = found[0]
        if precision is not None and self.runtime != "openvino":
            raise ValueError("precision applies to OpenVINO exports only.")
        config_file, tower_files = RUNTIMES[self.runtime]
        with open(os.path.join(directory, config_file)) as f:
            self.config = json.load(f)
        self.image_preprocessing = ImagePreprocessing.from_config(
            self.config["image_preprocessing"]
        )
        self.context_length = int(self.config["context_length"])
        self.logit_scale = np.float32(self.config["logit_scale"])
        bias = self.config.get("logit_bias")
        # Exports written before "sigmoid_logits": a bias means SigLIP.
        sigmoid = self.config.get("sigmoid_logits", bias not in (None, 0.0))
        self.logit_bias = np.float32(bias) if sigmoid else None
        self.batch_size = batch_size
        paths = {tower: os.path.join(directory, name) for tower, name in tower_files.items()}
        if self.runtime == "openvino":
            self._towers, self.precision = _openvino_towers(paths, precision)
        else:
            self._towers, self.precision = _onnxruntime_towers(paths), "f32"
        self.tokenizer = None
        if self.config.get("tokenizer"):
            self.tokenizer = _openvino_tokenizer(os.path.join(directory, self.config["tokenizer"]))

    @property
    def image_size(self):
        return self.image_preprocessing.image_size

    def encode_images(self, images):
        """L2-normalised embeddings (N, D) of uint8 RGB images at the
        model's size, or of float images already normalised."""
        images = np.asarray(images)
        size = self.image_size
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(f"images must have shape (N, {size}, {size}, 3), got {images.shape}.")
        images = np.asarray(images_for_model(self, images), "float32")
        return self._run("image", images)

    def encode_token_ids(self, token_ids):
        """L2-normalised embeddings (N, D) of int token ids (N, context)."""
        token_ids = np.asarray(token_ids)
        if token_ids.ndim != 2 or token_ids.shape[1] != self.context_length:
            raise ValueError(
                f"token_ids must have shape (N, {self.context_length}), got {token_ids.shape}."
            )
        if not np.issubdtype(token_ids.dtype, np.integer):
            raise ValueError(f"token_ids must be integers, got {token_ids.dtype}.")
        return self._run("text", token_ids.astype("int32"))

    def encode_texts(self, texts):
        """L2-normalised embeddings (N, D) of a list of str, tokenised by
        the export's tokenizer graph."""
        if self.tokenizer is None:
            raise ValueError(
                "This export has no tokenizer graph: tokenise with keras_clip.Tokenizer "
                "and call encode_token_ids."
            )
        return self.encode_token_ids(self.tokenizer(texts))

    def predict(self, inputs, batch_size=None, verbose=0):
        """As `CLIP.predict`: {"images"} and/or {"token_ids"} in,
        "image_embeddings" and/or "text_embeddings" out."""
        if not isinstance(inputs, dict) or not {"images", "token_ids"} & set(inputs):
            raise ValueError("inputs must be a dict with 'images' and/or 'token_ids'.")
        outputs = {}
        if "images" in inputs:
            outputs["image_embeddings"] = self.encode_images(inputs["images"])
        if "token_ids" in inputs:
            outputs["text_embeddings"] = self.encode_token_ids(inputs["token_ids"])
        return outputs

    def predict_on_batch(self, inputs):
        return self.predict(inputs)

    def _run(self, tower, inputs):
        run = self._towers[tower]
        parts = [
            run(inputs[i : i + self.batch_size]) for i in range(0, len(inputs), self.batch_size)
        ]
        embeddings = np.concatenate(parts) if parts else np.zeros((0, 0), "float32")
        # Renormalised: a reduced-precision runtime leaves norms a little off 1.
        norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
        return (embeddings / np.maximum(norms, 1e-12)).astype("float32")


def _openvino_towers(paths, precision):
    import openvino

    core = openvino.Core()
    settings = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
    compiled = {tower: core.compile_model(path, "CPU", settings) for tower, path in paths.items()}
    running = compiled["image"].get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return {tower: _first_output(graph) for tower, graph in compiled.items()}, running


def _openvino_tokenizer(path):
    """The tokenizer graph at `path` as a callable: list of str -> int32
    token ids."""
    require(("openvino_tokenizers",), "The export's tokenizer graph", extra="openvino")
    import openvino
    import openvino_tokenizers  # noqa: F401 (registers the graph's operations)

    run = _first_output(openvino.Core().compile_model(path, "CPU"))

    def tokenize(texts):
        texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
        return np.asarray(run(texts), "int32") if texts else np.zeros((0, 0), "int32")

    return tokenize


def _first_output(compiled):
    return lambda inputs: compiled(inputs)[0]


def _onnxruntime_towers(paths):
    import onnxruntime

    towers = {}
    for tower, path in paths.items():
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        towers[tower] = lambda inputs, session=session, name=name: session.run(
            None, {name: inputs}
        )[0]
    return towers
