"""The `keras-clip` command line."""

import argparse
import json
import os
import sys
import time

from keras_clip.cli_train import OBJECTIVES
from keras_clip.cli_train import add_train_parser

DEMO_OUTPUT = os.path.join("saved_models", "shapes_clip")


def default_verbosity():
    """Keras progress bars on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def _demo_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="Train a small CLIP on generated shapes and report zero-shot accuracy.",
        description=(
            "Generates captioned images of coloured shapes, learns a WordPiece "
            "vocabulary from the captions, trains a small CLIP (or CLIP-Lite) "
            "on CPU, then classifies held-out images zero-shot among the 30 "
            "colour-shape classes with prompts such as 'a photo of a red circle.'."
        ),
    )
    parser.add_argument("--train-size", type=int, default=8192)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--architecture", default="shapes-vit")
    parser.add_argument("--objective", default="infonce",
                        choices=OBJECTIVES,
                        help="'clip-lite' trains keras_clip.CLIPLite (JSD).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=DEMO_OUTPUT,
                        help="Directory for model.keras, tokenizer/ and saved_model/ "
                             f"(default {DEMO_OUTPUT}; '' to save nothing).")
    parser.add_argument("--verbose", type=int, default=default_verbosity(), choices=[0, 1, 2],
                        help="0 silent, 1 progress bar (default on a terminal), 2 one "
                             "line per epoch (default otherwise).")
    return parser


def run_demo(args):
    import keras

    import keras_clip
    from keras_clip.cli_train import build_model
    from keras_clip.cli_train import compile_for_training
    from keras_clip.datasets import shapes
    from keras_clip.evaluation import ZeroShotClassifier
    from keras_clip.preprocessing import normalize_images

    for name in ("train_size", "test_size", "epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    if args.batch_size < 2 or args.batch_size > args.train_size:
        raise ValueError("--batch-size must be between 2 and --train-size.")
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    config = keras_clip.models.architectures.architecture_config(args.architecture)
    image_size = config["image_size"]
    train = shapes.load(args.train_size, image_size, seed=args.seed)
    test = shapes.load(args.test_size, image_size, seed=args.seed + 10_000)
    tokenizer = keras_clip.Tokenizer.from_corpus(
        train["captions"], vocabulary_size=1000, context_length=16
    )
    model = build_model(args.objective, args.architecture, tokenizer)
    compile_for_training(model, args.epochs * (args.train_size // args.batch_size),
                         args.learning_rate, weight_decay=0.1)
    images = normalize_images(train["images"])
    token_ids = tokenizer(train["captions"])
    usable = (args.train_size // args.batch_size) * args.batch_size
    print(f"keras-clip demo: backend={keras.backend.backend()}, "
          f"{type(model).__name__} {args.architecture} ({model.count_params():,} "
          f"parameters), {args.train_size} training pairs, {args.epochs} epochs",
          flush=True)
    model.fit(
        {"images": images[:usable], "token_ids": token_ids[:usable]},
        batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
        verbose=args.verbose,
    )
    train_seconds = time.time() - start
    classifier = ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    test_images = normalize_images(test["images"])
    report = {
        "backend": keras.backend.backend(),
        "model": type(model).__name__,
        "objective": type(model.objective).__name__,
        "zero_shot_top1": classifier.accuracy(test_images, test["labels"], k=1),
        "zero_shot_top5": classifier.accuracy(test_images, test["labels"], k=5),
        "chance_top1": 1.0 / len(shapes.CLASS_NAMES),
        "num_test_images": args.test_size,
        "seconds": round(time.time() - start, 1),
        "train_seconds": round(train_seconds, 1),
    }
    print(f"Zero-shot accuracy on {args.test_size} held-out shapes "
          f"({len(shapes.CLASS_NAMES)} classes, prompts like "
          f"'a photo of a red circle.'): top-1 {report['zero_shot_top1']:.1%}, "
          f"top-5 {report['zero_shot_top5']:.1%} (chance "
          f"{report['chance_top1']:.1%})")
    if args.output:
        save_model_dir(model, tokenizer, args.output)
        report["output"] = args.output
        with open(os.path.join(args.output, "demo_report.json"), "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report))
    return report


def save_model_dir(model, tokenizer, directory):
    """model.keras + tokenizer/ + saved_model/ (the layout `zero-shot` reads).

    Saves an inference copy: the same weights without the optimizer's state
    (which would more than double the files).
    """
    from keras_clip.export import export_saved_model

    os.makedirs(directory, exist_ok=True)
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    model = copy
    model.save(os.path.join(directory, "model.keras"))
    tokenizer.save(os.path.join(directory, "tokenizer"))
    export_saved_model(model, tokenizer, os.path.join(directory, "saved_model"))


def load_model_dir(directory):
    """Loads the model and tokenizer that `save_model_dir` wrote."""
    import keras

    import keras_clip

    model_path = os.path.join(directory, "model.keras")
    if not os.path.exists(model_path):
        raise FileNotFoundError(
            f"No model.keras in {directory!r}; run `keras-clip demo` or "
            "`keras-clip export` first."
        )
    model = keras.saving.load_model(model_path)
    return model, keras_clip.Tokenizer.load(os.path.join(directory, "tokenizer"))


def run_export(args):
    model, tokenizer = load_model_dir(args.model_dir)
    from keras_clip.export import export_saved_model

    export_saved_model(model, tokenizer, args.output)
    print(f"Wrote a SavedModel to {args.output}")


def read_images(paths, image_size):
    """Decodes image files to uint8 RGB, resized and centre-cropped (TF ops)."""
    import numpy as np
    import tensorflow as tf

    from keras_clip.data.images import center_crop
    from keras_clip.data.images import decode_rgb

    images = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No image file {path!r}.")
        try:
            data = tf.io.read_file(path)
            images.append(center_crop(decode_rgb(data), image_size).numpy())
        except tf.errors.InvalidArgumentError:
            raise ValueError(f"{path!r} is not a readable JPEG, PNG, GIF or BMP image.")
    return np.stack(images)


def encode_pairs(model, tokenizer, source, batch_size=128):
    """Embeds every usable image-caption pair of `source` (with a progress bar).

    Returns:
        image embeddings (num_images, D), caption embeddings (num_captions,
        D), caption_to_image (num_captions,) and the data's `DataReport`.
    """
    import keras
    import numpy as np

    from keras_clip.data import image_text_dataset
    from keras_clip.export import image_size_of

    dataset = image_text_dataset(source, tokenizer, image_size_of(model), batch_size,
                                 training=False, with_image_index=True)
    images, texts, owners = [], [], []
    progress = keras.utils.Progbar(None, unit_name="pair")
    for batch in dataset.as_numpy_iterator():
        new = np.concatenate([[True], batch["image_index"][1:] != batch["image_index"][:-1]])
        if owners and batch["image_index"][0] == owners[-1][-1]:
            new[0] = False
        if new.any():
            images.append(model.predict_on_batch(
                {"images": batch["images"][new]})["image_embeddings"])
        texts.append(model.predict_on_batch(
            {"token_ids": batch["token_ids"]})["text_embeddings"])
        owners.append(batch["image_index"])
        progress.add(len(batch["token_ids"]))
    if not texts:
        raise ValueError(f"{source!r} has no usable image-caption pair.")
    _, caption_to_image = np.unique(np.concatenate(owners), return_inverse=True)
    return (np.concatenate(images), np.concatenate(texts), caption_to_image,
            dataset.report)


def run_evaluate(args):
    import numpy as np

    from keras_clip.datasets import shapes
    from keras_clip.evaluation import evaluate_zero_shot
    from keras_clip.evaluation import retrieval_metrics
    from keras_clip.evaluation.plots import save_heatmap
    from keras_clip.export import image_size_of
    from keras_clip.preprocessing import normalize_images

    if args.num_examples < 2:
        raise ValueError("--num-examples must be at least 2.")
    model, tokenizer = load_model_dir(args.model_dir)
    if args.data:
        image_embeddings, text_embeddings, caption_to_image, data_report = encode_pairs(
            model, tokenizer, args.data)
        report = {"model_dir": args.model_dir, "data": args.data,
                  "skipped": data_report.counts(),
                  "retrieval": retrieval_metrics(image_embeddings, text_embeddings,
                                                 caption_to_image)}
        first_captions = np.unique(caption_to_image, return_index=True)[1]
        text_embeddings = text_embeddings[first_captions]
    else:
        data = shapes.load(args.num_examples, image_size_of(model), seed=args.seed)
        images = normalize_images(data["images"])
        # Encode the collection once: retrieval and the similarity plot share it.
        embeddings = model.predict(
            {"images": images, "token_ids": tokenizer(data["captions"])},
            batch_size=256, verbose=1)
        image_embeddings = embeddings["image_embeddings"]
        text_embeddings = embeddings["text_embeddings"]
        report = {"model_dir": args.model_dir, "data": f"shapes (seed {args.seed})",
                  "zero_shot": evaluate_zero_shot(model, tokenizer, images,
                                                  data["labels"], data["class_names"]),
                  "retrieval": retrieval_metrics(image_embeddings, text_embeddings)}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    batch = min(32, len(image_embeddings))
    similarity = image_embeddings[:batch] @ text_embeddings[:batch].T
    save_heatmap(similarity, os.path.join(args.output, "similarity.png"))
    written = "report.json, similarity.png"
    summary = ""
    if "zero_shot" in report:
        save_heatmap(np.asarray(report["zero_shot"]["confusion_matrix"]),
                     os.path.join(args.output, "confusion.png"))
        written += ", confusion.png"
        zero_shot = report["zero_shot"]
        summary = f"zero-shot top-1 {zero_shot['top1']:.1%}, top-5 {zero_shot['top5']:.1%}; "
    retrieval = report["retrieval"]
    print(f"{summary}retrieval R@1 image->text {retrieval['image_to_text_recall@1']:.1%}, "
          f"text->image {retrieval['text_to_image_recall@1']:.1%}; "
          f"wrote {written} to {args.output}")
    return report


def run_zero_shot(args):
    from keras_clip.evaluation import ZeroShotClassifier
    from keras_clip.export import image_size_of
    from keras_clip.preprocessing import normalize_images

    # Bytes in argv that are not UTF-8 arrive as surrogates: show them as U+FFFD.
    classes = args.classes.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    class_names = [c.strip() for c in classes.split(",") if c.strip()]
    if len(class_names) < 2:
        raise ValueError("--classes needs at least two comma-separated names.")
    model, tokenizer = load_model_dir(args.model_dir)
    images = read_images(args.images, image_size_of(model))
    templates = args.template or None
    classifier = ZeroShotClassifier(model, tokenizer, class_names, templates)
    probabilities = classifier.predict(normalize_images(images))
    results = []
    for path, row in zip(args.images, probabilities):
        order = row.argsort()[::-1][: args.top_k]
        ranked = [{"label": class_names[i], "probability": round(float(row[i]), 4)}
                  for i in order]
        results.append({"image": path, "ranked": ranked})
        print(f"{path}: " + ", ".join(f"{r['label']} ({r['probability']:.1%})"
                                       for r in ranked))
    if args.json:
        print(json.dumps(results))
    return results


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-clip",
        description="Train, evaluate and serve CLIP models with Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _demo_parser(subparsers).set_defaults(handler=run_demo)
    add_train_parser(subparsers)
    export = subparsers.add_parser(
        "export", help="Export a saved model directory as a TF SavedModel.",
        description="Reads MODEL_DIR/model.keras and MODEL_DIR/tokenizer/ and writes a "
                    "SavedModel with encode_text, encode_image, encode_image_bytes and "
                    "serving_default signatures.")
    export.add_argument("--model-dir", default=DEMO_OUTPUT)
    export.add_argument("--output", required=True)
    export.set_defaults(handler=run_export)
    evaluate = subparsers.add_parser(
        "evaluate", help="Zero-shot and retrieval report with PNG plots.",
        description="Evaluates MODEL_DIR on held-out generated shapes: zero-shot "
                    "(top-1/5, per-class, confusion matrix) and image-text retrieval "
                    "(recall@k, ranks), or with --data on your own captioned images "
                    "(retrieval, several captions per image allowed). Writes OUTPUT/report.json, similarity.png (the "
                    "first 32 images against their captions) and confusion.png.")
    evaluate.add_argument("--model-dir", default=DEMO_OUTPUT)
    evaluate.add_argument("--output", required=True)
    evaluate.add_argument("--data", help="Your own image-caption data (folder, CSV/JSONL, "
                                         "TFRecords): retrieval only, no zero-shot.")
    evaluate.add_argument("--num-examples", type=int, default=1000)
    evaluate.add_argument("--seed", type=int, default=10_000,
                          help="Data seed (the demo trains on seed 0).")
    evaluate.set_defaults(handler=run_evaluate)
    zero_shot = subparsers.add_parser(
        "zero-shot", help="Rank class names for image files.",
        description="Classifies image files against class names you choose, with "
                    "prompt ensembling ('a photo of a {}.', ...).")
    zero_shot.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files.")
    zero_shot.add_argument("--classes", required=True,
                           help="Comma-separated class names, e.g. 'red circle,blue square'.")
    zero_shot.add_argument("--model-dir", default=DEMO_OUTPUT)
    zero_shot.add_argument("--template", action="append",
                           help="Prompt template with one {} (repeatable).")
    zero_shot.add_argument("--top-k", type=int, default=3)
    zero_shot.add_argument("--json", action="store_true", help="Also print JSON.")
    zero_shot.set_defaults(handler=run_zero_shot)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"keras-clip {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
