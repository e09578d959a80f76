"""Train CLIP (InfoNCE) or CLIP-Lite (JSD) on the generated shapes dataset.

The same towers, data and steps for either objective; prints one JSON line
with the final loss and zero-shot top-1 accuracy on held-out images (30
classes, chance 3.3%), and with --output saves model.keras and tokenizer/
for the other examples.

    python examples/train_shapes.py --objective clip-lite --batch-size 32
    KERAS_BACKEND=jax python examples/train_shapes.py --smoke
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shapes_training  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes_training.add_common_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", help="Directory for model.keras and tokenizer/.")
    args = parser.parse_args(argv)
    from keras_clip.training import train_on_shapes

    report, model, tokenizer = train_on_shapes(args.batch_size, **shapes_training.settings(args))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        model.save(os.path.join(args.output, "model.keras"))
        tokenizer.save(os.path.join(args.output, "tokenizer"))
        report["output"] = args.output
    shapes_training.print_report(report)
    return report


if __name__ == "__main__":
    main()
