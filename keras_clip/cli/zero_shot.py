"""`keras-clip zero-shot`: rank class names for image files."""

import json

from keras_clip.cli.common import add_model_arguments


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "zero-shot",
        help="Rank class names for image files.",
        description="Classifies image files against class names you choose, with "
        "prompt ensembling ('a photo of a {}.', ...).",
    )
    parser.add_argument("images", nargs="+", help="JPEG/PNG/GIF/BMP files.")
    parser.add_argument(
        "--classes",
        required=True,
        help="Comma-separated class names, e.g. 'red circle,blue square'.",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--template", action="append", help="Prompt template with one {} (repeatable)."
    )
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Also print JSON.")
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.cli.common import load_model
    from keras_clip.data.images import load_images
    from keras_clip.evaluation import ZeroShotClassifier

    # Bytes in argv that are not UTF-8 arrive as surrogates: show them as U+FFFD.
    classes = args.classes.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    class_names = [c.strip() for c in classes.split(",") if c.strip()]
    if len(class_names) < 2:
        raise ValueError("--classes needs at least two comma-separated names.")
    model, tokenizer = load_model(args)
    images = load_images(args.images, model)
    classifier = ZeroShotClassifier(model, tokenizer, class_names, args.template or None)
    probabilities = classifier.predict(images)  # uint8: the model's mean and std
    results = []
    for path, row in zip(args.images, probabilities):
        order = row.argsort()[::-1][: args.top_k]
        ranked = [{"label": class_names[i], "probability": round(float(row[i]), 4)} for i in order]
        results.append({"image": path, "ranked": ranked})
        print(f"{path}: " + ", ".join(f"{r['label']} ({r['probability']:.1%})" for r in ranked))
    if args.json:
        print(json.dumps(results))
    return results
