"""The `keras-clip` command line."""

import argparse
import json
import os
import sys
import time

from keras_clip.cli_common import DEMO_OUTPUT
from keras_clip.cli_common import default_verbosity
from keras_clip.cli_common import load_model_dir
from keras_clip.cli_common import save_model_dir
from keras_clip.cli_evaluate import add_evaluate_parser
from keras_clip.cli_train import OBJECTIVES
from keras_clip.cli_train import add_no_xla_argument
from keras_clip.cli_train import add_train_parser



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
    add_no_xla_argument(parser)
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
                         args.learning_rate, weight_decay=0.1, xla=not args.no_xla)
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


def run_export(args):
    model, tokenizer = load_model_dir(args.model_dir)
    from keras_clip.export import export_saved_model

    export_saved_model(model, tokenizer, args.output)
    print(f"Wrote a SavedModel to {args.output}")


def run_zero_shot(args):
    from keras_clip.evaluation import ZeroShotClassifier
    from keras_clip.export import image_size_of

    # Bytes in argv that are not UTF-8 arrive as surrogates: show them as U+FFFD.
    classes = args.classes.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    class_names = [c.strip() for c in classes.split(",") if c.strip()]
    if len(class_names) < 2:
        raise ValueError("--classes needs at least two comma-separated names.")
    model, tokenizer = load_model_dir(args.model_dir)
    from keras_clip.data.images import load_images

    images = load_images(args.images, image_size_of(model))
    templates = args.template or None
    classifier = ZeroShotClassifier(model, tokenizer, class_names, templates)
    probabilities = classifier.predict(images)  # uint8: the model's mean and std
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
    add_evaluate_parser(subparsers)
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
