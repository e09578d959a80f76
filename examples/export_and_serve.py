"""Export a model as a TF SavedModel and serve it with TensorFlow alone.

Exports a saved model directory (default: the committed demo model) with
tokenisation, image decoding and normalisation inside the graph, then
serves it in a fresh Python process that cannot import keras_clip: PNG
bytes and caption strings go in, embeddings and zero-shot logits come out.
Works from every backend (a PyTorch-backend model is exported through a
TensorFlow process).

    python examples/export_and_serve.py --output /tmp/shapes_saved_model
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zero_shot import add_model_arguments  # noqa: E402
from zero_shot import load  # noqa: E402

# What a serving process runs: TensorFlow and tensorflow-text, nothing else.
SERVE = """
import json, sys
sys.modules["keras_clip"] = None
import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer ops)
path, images, texts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
served = tf.saved_model.load(path)
image_bytes = tf.constant([open(p, "rb").read() for p in images])
out = served.signatures["serving_default"](image_bytes=image_bytes, texts=tf.constant(texts))
print(json.dumps({"signatures": sorted(served.signatures.keys()),
                  "logits": out["logits"].numpy().round(3).tolist()}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="SavedModel directory to write.")
    parser.add_argument(
        "--texts",
        default="a red circle,a blue square,a green cross",
        help="Comma-separated captions to score the images against.",
    )
    add_model_arguments(parser)
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from keras_clip.datasets import shapes
    from keras_clip.export import export_saved_model

    model, tokenizer = load(args)
    export_saved_model(model, tokenizer, args.output)
    images, captions = [], []
    for index, name in enumerate(["red circle", "blue square", "green cross"]):
        example = shapes.load(1, 64, seed=index, classes=[name])
        images.append(os.path.join(args.output, f"example_{index}.png"))
        captions.append(example["captions"][0])
        tf.io.write_file(images[-1], tf.io.encode_png(example["images"][0]))
    texts = [t.strip() for t in args.texts.split(",")]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    served = subprocess.run(
        [sys.executable, "-c", SERVE, args.output, json.dumps(images), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
    )
    if served.returncode != 0:
        raise RuntimeError("Serving failed: " + served.stderr.strip().splitlines()[-1])
    result = json.loads(served.stdout.strip().splitlines()[-1])
    report = {
        "saved_model": args.output,
        "signatures": result["signatures"],
        "captions": captions,
        "texts": texts,
        "logits": result["logits"],
        "best_text_per_image": [texts[int(i)] for i in np.argmax(result["logits"], 1)],
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
