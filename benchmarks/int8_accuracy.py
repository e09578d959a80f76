"""Accuracy of the OpenVINO and ONNX exports, float and int8, on real data,
one JSON line.

The model is `saved_models/digits_clip`: a small CLIP ("shapes-vit" at 32
px, 1.26 M parameters) trained here on scikit-learn's handwritten digits
(`keras_clip.datasets.digits`, the first 1,437 images, captioned), made by

    python benchmarks/int8_accuracy.py --train saved_models/digits_clip

The evaluation set is the other 360 digits, written as a class folder and
read with `read_evaluation_set`; zero-shot uses the default prompt
templates. Each export is compared with the float Keras model by
`keras_clip.export.fidelity.export_fidelity` (zero-shot top-1 of both, and
each embedding's cosine to the float model's): OpenVINO float32 IR at
float32 and at this CPU's default precision, int8 weight-only, int8 static
(calibrated on 300 training pairs), and the ONNX graphs in ONNX Runtime.

    python benchmarks/int8_accuracy.py [--model-dir saved_models/digits_clip]
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from common import REPOSITORY  # noqa: E402
from common import host  # noqa: E402

sys.path.insert(0, REPOSITORY)

MODEL_DIR = os.path.join(REPOSITORY, "saved_models", "digits_clip")
IMAGE_SIZE, BATCH, EPOCHS, SEED = 32, 64, 60, 0


def train(output):
    """Trains the digits model and saves it (model.keras, tokenizer/)."""
    import keras

    from keras_clip import data
    from keras_clip.cli.common import save_model_dir
    from keras_clip.datasets import digits
    from keras_clip.evaluation import ZeroShotClassifier
    from keras_clip.tokenizers import Tokenizer
    from keras_clip.training import build_model
    from keras_clip.training.recipes import compile_for_training

    keras.utils.set_random_seed(SEED)
    pairs, test = digits.load("train", IMAGE_SIZE), digits.load("test", IMAGE_SIZE)
    tokenizer = Tokenizer.from_corpus(pairs["captions"], 200, context_length=16)
    dataset = data.image_text_dataset(
        (pairs["images"], pairs["captions"]), tokenizer, IMAGE_SIZE, BATCH, seed=SEED,
        crop_scale=(0.7, 1.0),
    )  # fmt: skip
    model = build_model("infonce", "shapes-vit", tokenizer, image_size=IMAGE_SIZE)
    compile_for_training(model, EPOCHS * (len(pairs["captions"]) // BATCH), 1e-3, 0.1)
    model.fit(dataset, epochs=EPOCHS, verbose=2)
    save_model_dir(model, tokenizer, output, saved_model=False)
    classifier = ZeroShotClassifier(model, tokenizer, digits.CLASS_NAMES)
    return {"zero_shot_top1": classifier.accuracy(test["images"], test["labels"])}


def write_class_folder(split, folder):
    """The digits of `split` as FOLDER/<class name>/NNNN.png."""
    from PIL import Image

    from keras_clip.datasets import digits

    found = digits.load(split, IMAGE_SIZE)
    for index, (image, label) in enumerate(zip(found["images"], found["labels"])):
        path = os.path.join(folder, digits.CLASS_NAMES[label], f"{index:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(image).save(path)
    return found


def compare(model_dir):
    import numpy as np

    from keras_clip.cli.common import load_model_dir
    from keras_clip.data.labelled import read_evaluation_set
    from keras_clip.datasets import digits
    from keras_clip.export.exported_towers import ExportedTowers
    from keras_clip.export.fidelity import export_fidelity
    from keras_clip.export.onnx import export_onnx
    from keras_clip.export.openvino import export_openvino

    model, tokenizer = load_model_dir(model_dir)
    pairs = digits.load("train", IMAGE_SIZE)
    calibration = [
        {"images": pairs["images"], "token_ids": np.asarray(tokenizer(pairs["captions"]))}
    ]
    forms = {
        "openvino": ("openvino", None, None),
        "openvino/f32": ("openvino", None, "f32"),
        "openvino-int8-weights": ("openvino", "weights", None),
        "openvino-int8-static": ("openvino", "static", None),
        "onnxruntime": ("onnx", None, None),
    }
    report = {}
    with tempfile.TemporaryDirectory() as workdir:
        write_class_folder("test", os.path.join(workdir, "test"))
        evaluation_set = read_evaluation_set(os.path.join(workdir, "test"), model)
        for name, (kind, int8, precision) in forms.items():
            folder = os.path.join(workdir, kind + (f"-{int8}" if int8 else ""))
            start = time.time()
            if not os.path.isdir(folder):
                if kind == "onnx":
                    export_onnx(model, folder)
                else:
                    export_openvino(model, folder, int8, calibration if int8 == "static" else None)
            towers = ExportedTowers(folder, precision=precision)
            entry = export_fidelity(model, towers, tokenizer, evaluation_set)
            entry["seconds"] = round(time.time() - start, 1)
            report[name] = entry
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=MODEL_DIR)
    parser.add_argument("--train", metavar="OUTPUT", help="Train the digits model into OUTPUT.")
    args = parser.parse_args()
    if args.train:
        print(json.dumps({"trained": args.train, **train(args.train)}))
        return
    print(json.dumps({"host": host(), "model": args.model_dir, "forms": compare(args.model_dir)}))


if __name__ == "__main__":
    main()
