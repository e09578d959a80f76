"""Inference throughput of keras-clip against transformers on the same
weights, one JSON line.

A randomly initialised transformers `CLIPModel` with ViT-B/32 shapes (224
px, patch 32, width 768 x 12 layers; text width 512 x 12 layers, context
77) is saved once and loaded by every system. Inputs: 32 random uint8
images, normalised with CLIP's mean and std (NHWC for keras-clip, NCHW for
transformers), and 256 token-id rows of context 77 (random lengths, start
and end tokens). Systems, each in its own process:

- `transformers` (PyTorch, float32, `torch.inference_mode`): the peer;
  `transformers-bf16`: the same model cast to bfloat16;
- `keras-clip/<backend>`: the README's API, `CLIP.from_pretrained(dir)` and
  `model.predict` with no other argument (TensorFlow, JAX, PyTorch);
  `keras-clip/<backend>/mixed_bfloat16`: `from_pretrained(dir,
  dtype="mixed_bfloat16")`;
- `savedmodel`: `keras_clip.export.export_saved_model`, loaded with
  `tf.saved_model.load` and called through `encode_image` on the uint8
  images (its `encode_text` takes strings, so it has no text figure);
- `onnxruntime`: `export_onnx`'s two graphs; `onnxruntime-int8-static`:
  those graphs through ONNX Runtime's own static QDQ quantization
  (`onnxruntime.quantization.quantize_static`, per-channel weights);
- `openvino`: `export_openvino`'s float32 IR at OpenVINO's default
  precision on this CPU (bfloat16 where it has AMX or AVX512-BF16),
  `openvino/f32` the same IR held to float32, `openvino-int8-weights` and
  `openvino-int8-static` its int8 forms (NNCF; static calibrated on the
  benchmark's own images and token ids: these rows measure speed, the
  accuracy of int8 is `benchmarks/int8_accuracy.py`'s).

Each system's embeddings are compared with transformers' before any
timing (`max_abs_diff`). A system's time is the median of `--steps` calls
after `--warmup`; rounds run every system once, and the report gives the
median over rounds, each round's value and the ratio to transformers.

    python benchmarks/inference.py [--steps 3] [--warmup 1] [--repeats 3]
        [--systems transformers keras-clip/tensorflow ...]
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
from common import host
from common import import_transformers
from common import median_or_error
from common import spawn

IMAGES, TEXTS, CONTEXT = 32, 256, 77
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], "float32")
STD = np.array([0.26862954, 0.26130258, 0.27577711], "float32")
SYSTEMS = {  # name: backend of its process
    "transformers": "torch",
    "transformers-bf16": "torch",
    "keras-clip/tensorflow": "tensorflow",
    "keras-clip/jax": "jax",
    "keras-clip/torch": "torch",
    "keras-clip/tensorflow/mixed_bfloat16": "tensorflow",
    "keras-clip/torch/mixed_bfloat16": "torch",
    "savedmodel": "tensorflow",
    "onnxruntime": "tensorflow",
    "onnxruntime-int8-static": "tensorflow",
    "openvino/f32": "tensorflow",
    "openvino": "tensorflow",
    "openvino-int8-weights": "tensorflow",
    "openvino-int8-static": "tensorflow",
}
EXPORTED = {  # system: the folder `prepare_exports` writes for it
    "onnxruntime": "onnx",
    "onnxruntime-int8-static": "onnx-int8-static",
    "openvino/f32": "openvino",
    "openvino": "openvino",
    "openvino-int8-weights": "openvino-int8-weights",
    "openvino-int8-static": "openvino-int8-static",
}


def make_inputs(workdir):
    """The checkpoint, the uint8 images and the token ids, in `workdir`."""
    transformers = import_transformers()
    import torch

    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(bos_token_id=49406, eos_token_id=49407, pad_token_id=0), projection_dim=512
    )
    transformers.CLIPModel(config).save_pretrained(os.path.join(workdir, "checkpoint"))
    rng = np.random.default_rng(0)
    np.save(
        os.path.join(workdir, "images.npy"), rng.integers(0, 256, (IMAGES, 224, 224, 3), "uint8")
    )
    token_ids = np.zeros((TEXTS, CONTEXT), "int32")
    for row, length in enumerate(rng.integers(4, CONTEXT - 1, TEXTS)):
        token_ids[row, 0] = 49406
        token_ids[row, 1:length] = rng.integers(1, 49405, length - 1)
        token_ids[row, length] = 49407
    np.save(os.path.join(workdir, "token_ids.npy"), token_ids)


def prepare_exports(workdir, systems):
    """Child: the SavedModel, the ONNX graphs and the OpenVINO IR that
    `systems` run."""
    import keras_clip
    from keras_clip.export import export_saved_model
    from keras_clip.export.onnx import export_onnx
    from keras_clip.export.openvino import export_openvino

    model = keras_clip.CLIP.from_pretrained(os.path.join(workdir, "checkpoint"))
    folders = {EXPORTED[name] for name in systems if name in EXPORTED}
    if "savedmodel" in systems:
        tokenizer = keras_clip.Tokenizer.from_corpus(["a photo of a cat"], 100, CONTEXT)
        export_saved_model(model, tokenizer, os.path.join(workdir, "savedmodel"))
    if folders & {"onnx", "onnx-int8-static"}:
        export_onnx(model, os.path.join(workdir, "onnx"))
    if "onnx-int8-static" in folders:
        quantize_onnx(workdir)
    calibration = [
        {
            "images": np.load(os.path.join(workdir, "images.npy")),
            "token_ids": np.load(os.path.join(workdir, "token_ids.npy"))[:IMAGES],
        }
    ]
    for int8 in (None, "weights", "static"):
        folder = "openvino" + (f"-int8-{int8}" if int8 else "")
        if folder in folders:
            export_openvino(
                model,
                os.path.join(workdir, folder),
                int8,
                calibration if int8 == "static" else None,
                calibration_size=IMAGES,
            )
    return {}


def _calibration_reader(name, values):
    """ONNX Runtime's calibration reader over `values`, one row at a time."""
    from onnxruntime import quantization

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.rows = iter(values[i : i + 1] for i in range(len(values)))

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else {name: row}

    return Reader()


def quantize_onnx(workdir):
    """ONNX Runtime's static QDQ int8 of both graphs, calibrated on the
    benchmark's images and token ids."""
    import onnx
    from onnxruntime import quantization

    inputs = {
        "image": ((np.load(os.path.join(workdir, "images.npy")) / 255.0 - MEAN) / STD),
        "text": np.load(os.path.join(workdir, "token_ids.npy")),
    }
    os.makedirs(os.path.join(workdir, "onnx-int8-static"), exist_ok=True)
    for tower, values in inputs.items():
        source = os.path.join(workdir, "onnx", f"{tower}_encoder.onnx")
        name = onnx.load(source).graph.input[0].name

        quantization.quantize_static(
            source,
            os.path.join(workdir, "onnx-int8-static", f"{tower}_encoder.onnx"),
            _calibration_reader(name, values.astype("float32" if tower == "image" else "int32")),
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            # The matrix products only: tf2onnx writes LayerNorm's mean as a
            # GlobalAveragePool, whose quantized form ONNX Runtime refused.
            op_types_to_quantize=["MatMul", "Gemm", "Conv"],
            activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8,
        )
    shutil.copy(
        os.path.join(workdir, "onnx", "onnx_config.json"),
        os.path.join(workdir, "onnx-int8-static", "onnx_config.json"),
    )


def encoders(name, workdir):
    """Child: (encode_images, encode_texts or None) of system `name`."""
    images = np.load(os.path.join(workdir, "images.npy"))
    token_ids = np.load(os.path.join(workdir, "token_ids.npy"))
    normalised = ((images / 255.0 - MEAN) / STD).astype("float32")
    checkpoint = os.path.join(workdir, "checkpoint")
    if name.startswith("transformers"):
        transformers = import_transformers()
        import torch

        torch.set_grad_enabled(False)
        model = transformers.CLIPModel.from_pretrained(checkpoint).eval()
        pixels = torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())
        if name.endswith("bf16"):
            model, pixels = model.to(torch.bfloat16), pixels.to(torch.bfloat16)
        ids = torch.from_numpy(token_ids.astype("int64"))

        def as_numpy(features):
            features = getattr(features, "pooler_output", features)  # transformers 5
            return torch.nn.functional.normalize(features.float(), dim=-1).numpy()

        return (
            lambda: as_numpy(model.get_image_features(pixel_values=pixels)),
            lambda: as_numpy(model.get_text_features(input_ids=ids)),
        )
    if name.startswith("keras-clip"):
        import keras_clip

        policy = name.split("/")[2:]
        model = keras_clip.CLIP.from_pretrained(
            checkpoint, **({"dtype": policy[0]} if policy else {})
        )
        return (
            lambda: model.predict({"images": normalised}, batch_size=IMAGES, verbose=0)[
                "image_embeddings"
            ],
            lambda: model.predict({"token_ids": token_ids}, batch_size=TEXTS, verbose=0)[
                "text_embeddings"
            ],
        )
    if name == "savedmodel":
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the tokenizer's ops)

        encode_image = tf.saved_model.load(os.path.join(workdir, "savedmodel")).signatures[
            "encode_image"
        ]
        return lambda: encode_image(images=tf.constant(images))["embeddings"].numpy(), None
    from keras_clip.export.exported_towers import ExportedTowers

    towers = ExportedTowers(
        os.path.join(workdir, EXPORTED[name]),
        precision="f32" if name.endswith("/f32") else None,
        batch_size=max(IMAGES, TEXTS),
    )
    return (
        lambda: towers.predict({"images": normalised})["image_embeddings"],
        lambda: towers.predict({"token_ids": token_ids})["text_embeddings"],
    )


def run_system(name, workdir, steps, warmup):
    """Child: embeddings saved for comparison, then median seconds per call."""
    report = {}
    for kind, encode in zip(("image", "text"), encoders(name, workdir)):
        if encode is None:
            continue
        np.save(os.path.join(workdir, f"{name.replace('/', '_')}.{kind}.npy"), encode())
        times = []
        for _ in range(warmup + steps):
            start = time.perf_counter()
            encode()
            times.append(time.perf_counter() - start)
        report[f"{kind}_seconds"] = statistics.median(times[warmup:])
    return report


def max_abs_diff(workdir, name, kind):
    def load(system):
        path = os.path.join(workdir, f"{system.replace('/', '_')}.{kind}.npy")
        return np.load(path) if os.path.exists(path) else None

    reference, embeddings = load("transformers"), load(name)
    if reference is None or embeddings is None:
        return None
    return float(np.abs(reference - embeddings.astype("float32")).max())


def summarise(workdir, outcomes):
    """Per system: rates, per-round rates, ratios to transformers, diffs."""
    report, peer = {}, {}
    for name, rounds in outcomes.items():
        entry = {}
        for kind, count in (("image", IMAGES), ("text", TEXTS)):
            seconds, values = median_or_error(rounds, f"{kind}_seconds")
            if seconds is None:
                if any(values):
                    entry["error"] = values[0]
                continue
            rate = count / seconds
            peer.setdefault(kind, rate)  # transformers runs first
            entry[f"{kind}s_per_second"] = round(rate, 2)
            entry[f"{kind}s_per_second_by_round"] = [round(count / t, 2) for t in values]
            entry[f"{kind}_ratio_vs_transformers"] = round(rate / peer[kind], 2)
            entry[f"{kind}_max_abs_diff"] = max_abs_diff(workdir, name, kind)
        report[name] = entry
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "prepare":
            result = prepare_exports(args.workdir, args.systems)
        else:
            result = run_system(args.child, args.workdir, args.steps, args.warmup)
        return print(json.dumps(result))
    systems = ["transformers"] + [s for s in args.systems if s != "transformers"]
    with tempfile.TemporaryDirectory() as workdir:
        make_inputs(workdir)
        options = ["--workdir", workdir, "--steps", args.steps, "--warmup", args.warmup]
        prepared = {}
        if {"savedmodel", *EXPORTED} & set(systems):
            prepared = spawn(
                __file__, "prepare", "tensorflow", options + ["--systems", *systems], args.timeout
            )
        outcomes = {name: [] for name in systems}
        for _ in range(args.repeats):
            for name in systems:
                if "error" in prepared and (name == "savedmodel" or name in EXPORTED):
                    outcomes[name].append(prepared)
                    continue
                outcomes[name].append(spawn(__file__, name, SYSTEMS[name], options, args.timeout))
        report = {
            "host": host(),
            "model": "ViT-B/32 (random weights)",
            "image_batch": IMAGES,
            "text_batch": TEXTS,
            "context": CONTEXT,
            "rounds": args.repeats,
            "systems": summarise(workdir, outcomes),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
