"""OpenVINO export: the image and text towers as OpenVINO IR, in float32 or
int8, for fast CPU inference.

`export_openvino` writes, through Keras' `export(format="openvino")`,

    DIR/image_encoder.xml, .bin   images float32 [N, S, S, 3], normalised
                                  with the model's mean and std -> [N, D]
    DIR/text_encoder.xml, .bin    token_ids int32 [N, L] -> [N, D]
    DIR/tokenizer.xml, .bin       with `tokenizer=`: texts (strings [N]) ->
                                  token_ids int32 [N, L], as
                                  `keras_clip.Tokenizer` gives them (see
                                  `export.openvino_tokenizer`)
    DIR/openvino_config.json      as `export.towers.write_tower_config`
                                  writes it, with "int8",
                                  "calibration_samples" and "tokenizer"
                                  (the file's name, or None)

Embeddings are L2-normalised. Without the tokenizer graph (one
openvino-tokenizers cannot express), run `keras_clip.Tokenizer` and feed
its int32 ids, as for ONNX. The int8 forms are made with NNCF from the
float graphs:

- `int8="weights"`: weight-only int8 (`nncf.compress_weights`, asymmetric,
  per output channel). Needs no data; activations stay floating point.
- `int8="static"`: full static post-training quantization (`nncf.quantize`
  with the transformer preset: SmoothQuant, fast bias correction): weights
  and activations int8, their ranges measured on `calibration`, batches of
  the user's own data.

How close an export stays to the float model is measured, not assumed:
see `keras_clip.export.fidelity`. OpenVINO computes in bfloat16 by default
on CPUs that have the units for it (AMX or AVX512-BF16) and in float32
elsewhere; `ExportedTowers(directory, precision="f32")` asks for float32.

Example:

```python
export_openvino(model, "clip_int8/", int8="static", tokenizer=tokenizer,
                calibration=image_text_dataset("pairs/", tokenizer, model, 32, training=False))
towers = keras_clip.export.ExportedTowers("clip_int8/")
towers.predict({"images": uint8_images})["image_embeddings"]
towers.encode_texts(["a photo of a cat."])
```
"""

import contextlib
import io
import logging
import os
import tempfile

import keras
import numpy as np

from keras_clip.export.openvino_tokenizer import TOKENIZER_FILE
from keras_clip.export.openvino_tokenizer import openvino_tokenizer
from keras_clip.export.tensorflow_process import export_in_tensorflow_process
from keras_clip.export.towers import INPUT_NAMES
from keras_clip.export.towers import TOWERS
from keras_clip.export.towers import built_towers
from keras_clip.export.towers import write_tower_config
from keras_clip.models.preprocessing import images_for_model
from keras_clip.utils import require

TOWER_FILES = {"image": "image_encoder.xml", "text": "text_encoder.xml"}
CONFIG_FILE = "openvino_config.json"
INT8_MODES = (None, "weights", "static")


def export_openvino(
    model, directory, int8=None, calibration=None, calibration_size=300, tokenizer=None
):
    """Writes the two towers of `model` as OpenVINO IR in `directory`.

    Args:
        model: a `keras_clip.CLIP` (float32 weights), on any backend.
        directory: output folder.
        int8: None (float32), "weights" (weight-only int8) or "static"
            (weights and activations int8).
        calibration: for `int8="static"`: an iterable of batches, each a
            dict with "images" (uint8 RGB at the model's size, or float
            normalised as the model expects) and "token_ids", or an
            `(inputs, targets)` pair holding such a dict; a dataset from
            `keras_clip.data.image_text_dataset` is one.
        calibration_size: how many images and captions to measure ranges on
            (NNCF's default is 300).
        tokenizer: a `keras_clip.Tokenizer` to write as `tokenizer.xml`
            (CLIP BPE or WordPiece; needs openvino-tokenizers), or None.

    Returns:
        `directory`.
    """
    if int8 not in INT8_MODES:
        raise ValueError(f"int8 must be one of {INT8_MODES}, got {int8!r}.")
    require(("openvino",) + (("nncf",) if int8 else ()), "OpenVINO export", extra="openvino")
    if tokenizer is not None:
        tokenizer_graph = openvino_tokenizer(tokenizer)  # refused before any work
    samples = None
    if int8 == "static":
        if calibration is None:
            raise ValueError('int8="static" needs calibration data: batches of the user\'s pairs.')
        samples = calibration_samples(model, calibration, calibration_size)
    elif calibration is not None:
        raise ValueError(f"calibration data is used by int8='static' only, not int8={int8!r}.")
    with tempfile.TemporaryDirectory() as scratch:
        float_directory = directory if int8 is None else scratch  # int8: made from these
        if keras.backend.backend() == "tensorflow":
            write_float_towers(model, float_directory)
        else:
            export_in_tensorflow_process(
                "keras_clip.export.openvino:_export_in_process", model, None, float_directory
            )
        if int8 is not None:
            for tower in TOWERS:
                _quantize(
                    os.path.join(float_directory, TOWER_FILES[tower]),
                    os.path.join(directory, TOWER_FILES[tower]),
                    int8,
                    None if samples is None else samples[tower],
                )
    if tokenizer is not None:
        import openvino

        openvino.save_model(tokenizer_graph, os.path.join(directory, TOKENIZER_FILE))
    write_tower_config(
        model,
        os.path.join(directory, CONFIG_FILE),
        format="openvino",
        int8=int8,
        calibration_samples=0 if samples is None else len(samples["image"]),
        tokenizer=None if tokenizer is None else TOKENIZER_FILE,
    )
    return directory


def write_float_towers(model, directory):
    """The float32 IR of both towers (TensorFlow backend)."""
    os.makedirs(directory, exist_ok=True)
    for tower, wrapper, spec in built_towers(model):
        path = os.path.join(directory, TOWER_FILES[tower])
        wrapper.export(path, format="openvino", input_signature=[spec], verbose=False)


def calibration_samples(model, calibration, size):
    """Up to `size` single-sample inputs per tower, {"image": [...], "text":
    [...]}, from `calibration`'s batches (uint8 images normalised here)."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"calibration_size must be a positive integer, got {size!r}.")
    if hasattr(calibration, "as_numpy_iterator"):
        calibration = calibration.as_numpy_iterator()
    samples = {"image": [], "text": []}
    for batch in calibration:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if not isinstance(batch, dict) or not all(name in batch for name in INPUT_NAMES.values()):
            raise ValueError(
                "Each calibration batch must be a dict with 'images' and 'token_ids' "
                f"(or an (inputs, targets) pair holding one); got {type(batch).__name__}."
            )
        images = np.asarray(images_for_model(model, np.asarray(batch["images"])), "float32")
        token_ids = np.asarray(batch["token_ids"], "int32")
        if len(images) != len(token_ids):
            raise ValueError(
                f"A calibration batch has {len(images)} images but {len(token_ids)} token rows."
            )
        for image, row in zip(images, token_ids):
            if len(samples["image"]) < size:
                samples["image"].append(image[None])
                samples["text"].append(row[None])
        if len(samples["image"]) >= size:
            break
    if not samples["image"]:
        raise ValueError("The calibration data yielded no batch.")
    return samples


def _quantize(source, target, mode, samples):
    """Reads the float IR at `source`, writes its int8 form at `target`."""
    import nncf
    import openvino

    float_graph = openvino.Core().read_model(source)
    # NNCF logs its bit-width tables and draws progress bars on standard
    # output: keep its warnings, not those.
    nncf.set_log_level(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        if mode == "weights":
            graph = nncf.compress_weights(float_graph, mode=nncf.CompressWeightsMode.INT8_ASYM)
        else:
            graph = nncf.quantize(
                float_graph,
                nncf.Dataset(samples),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(samples),
            )
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    openvino.save_model(graph, target, compress_to_fp16=False)


def _export_in_process(model, tokenizer, directory):
    """`export_in_tensorflow_process`'s calling convention."""
    return write_float_towers(model, directory)
