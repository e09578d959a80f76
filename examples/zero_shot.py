"""Zero-shot classification: class names in, probabilities out, no training.

Classifies image files (or, with --generate N, N fresh shapes images whose
labels are known, to report accuracy) against class names with prompt
ensembling. The model is a saved model directory (default: the demo model
committed in saved_models/shapes_clip) or any checkpoint
`keras_clip.CLIP.from_pretrained` reads, with --tokenizer.

    python examples/zero_shot.py --generate 300
    python examples/zero_shot.py cat.jpg dog.jpg --classes "cat,dog" \\
        --pretrained clip-vit-base-patch32/
"""

import argparse
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(args):
    """(model, tokenizer) from --pretrained or --model-dir."""
    import keras_clip
    from keras_clip.cli.common import load_model_dir

    if args.pretrained:
        model = keras_clip.CLIP.from_pretrained(args.pretrained)
        tokenizer = keras_clip.Tokenizer.from_pretrained(args.tokenizer or args.pretrained)
        return model, tokenizer
    return load_model_dir(args.model_dir)


def add_model_arguments(parser):
    parser.add_argument("--model-dir", default=os.path.join(ROOT, "saved_models", "shapes_clip"))
    parser.add_argument("--pretrained", help="A checkpoint for CLIP.from_pretrained.")
    parser.add_argument("--tokenizer", help="Tokenizer files, if not beside --pretrained.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help="Image files (JPEG, PNG, GIF, BMP).")
    parser.add_argument(
        "--classes", help="Comma-separated class names (default: the 30 shapes classes)."
    )
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        help="Classify N generated shapes images and report accuracy.",
    )
    parser.add_argument("--top-k", type=int, default=3)
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    if not args.images and not args.generate:
        parser.error("give image files or --generate N")

    import numpy as np

    import keras_clip
    from keras_clip.data import load_images
    from keras_clip.datasets import shapes

    model, tokenizer = load(args)
    class_names = (
        [c.strip() for c in args.classes.split(",")] if args.classes else list(shapes.CLASS_NAMES)
    )
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, class_names)
    if args.generate:
        test = shapes.load(args.generate, model.image_size, seed=12345)
        labels = np.array([class_names.index(shapes.CLASS_NAMES[i]) for i in test["labels"]])
        report = {
            "images": args.generate,
            "top1": round(classifier.accuracy(test["images"], labels), 4),
            "top5": round(classifier.accuracy(test["images"], labels, k=5), 4),
            "chance_top1": round(1 / len(class_names), 4),
        }
    else:
        probabilities = classifier.predict(load_images(args.images, model.image_size))
        report = {
            "predictions": [
                {
                    "image": path,
                    "ranked": [
                        [class_names[i], round(float(row[i]), 4)]
                        for i in row.argsort()[::-1][: args.top_k]
                    ],
                }
                for path, row in zip(args.images, probabilities)
            ]
        }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
