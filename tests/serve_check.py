"""Run as a script in a fresh process: serve a SavedModel with TF + tf-text only.

    python tests/serve_check.py SAVED_MODEL INPUTS.npz OUTPUTS.npz

keras_clip is made unimportable first. Writes each signature's outputs and,
for bad inputs, the error class and first line (or "ok").
"""

import json
import sys

sys.modules["keras_clip"] = None  # any import of keras_clip now fails

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the tokenizer's ops)

MESSAGES = []


def outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as error:  # noqa: BLE001 - reported to the parent
        MESSAGES.append(str(error))
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"


def main(path, inputs_path, outputs_path):
    served = tf.saved_model.load(path)
    data = np.load(inputs_path, allow_pickle=True)
    sig = served.signatures
    texts = tf.constant(list(data["texts"]))
    image_bytes = tf.constant(list(data["image_bytes"]))
    results = {
        "encode_text": sig["encode_text"](texts=texts)["embeddings"].numpy(),
        "encode_image": sig["encode_image"](images=tf.constant(data["images"]))[
            "embeddings"
        ].numpy(),
        "encode_image_bytes": sig["encode_image_bytes"](image_bytes=image_bytes)[
            "embeddings"
        ].numpy(),
        "encode_token_ids": sig["encode_token_ids"](token_ids=tf.constant(data["token_ids"]))[
            "embeddings"
        ].numpy(),
    }
    config = sig["image_preprocessing"]()["config"].numpy().decode("utf-8")
    results["image_preprocessing"] = config
    both = sig["serving_default"](image_bytes=image_bytes, texts=texts)
    results.update({f"serving_default_{k}": v.numpy() for k, v in both.items()})
    size = data["images"].shape[1]
    bad = {
        "empty_string": lambda: sig["encode_text"](texts=tf.constant([""])),
        "long_string": lambda: sig["encode_text"](texts=tf.constant(["circle " * 1500])),
        "non_utf8": lambda: sig["encode_text"](texts=tf.constant([b"\xff\xfe red \xc3"])),
        "wrong_image_size": lambda: sig["encode_image"](
            images=tf.zeros([1, size + 1, size + 1, 3], tf.uint8)
        ),
        "wrong_channels": lambda: sig["encode_image"](
            images=tf.zeros([1, size, size, 4], tf.uint8)
        ),
        "corrupt_bytes": lambda: sig["encode_image_bytes"](
            image_bytes=tf.constant([b"\x89PNG\r\n\x1a\nnot really a png"])
        ),
        "grayscale_png": lambda: sig["encode_image_bytes"](
            image_bytes=tf.constant([tf.io.encode_png(tf.zeros([7, 5, 1], tf.uint8)).numpy()])
        ),
    }
    report = {name: outcome(fn) for name, fn in bad.items()}
    np.savez(outputs_path, report=json.dumps(report), messages="\n".join(MESSAGES), **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
