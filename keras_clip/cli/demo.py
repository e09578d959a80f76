"""`keras-clip demo`: train a small CLIP on generated shapes, score zero-shot."""

import json
import os
import time

from keras_clip.cli.common import ARCHITECTURE_HELP
from keras_clip.cli.common import add_no_xla_argument
from keras_clip.cli.common import add_verbose_argument
from keras_clip.cli.common import device_line
from keras_clip.cli.common import verbosity
from keras_clip.training import OBJECTIVES


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="Train a small CLIP on generated shapes and report zero-shot accuracy.",
        description=(
            "Generates captioned images of coloured shapes, learns a WordPiece "
            "vocabulary from the captions, trains a small CLIP (or CLIP-Lite) "
            "on CPU, then classifies held-out images zero-shot among the 30 "
            "colour-shape classes with prompts such as 'a photo of a red circle.'. "
            "Writes the model to a new folder under outputs/ (or --output)."
        ),
    )
    parser.add_argument("--train-size", type=int, default=8192)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--architecture",
        default="shapes-vit",
        help="A named shape (default: %(default)s): " + ARCHITECTURE_HELP + ".",
    )
    parser.add_argument(
        "--objective",
        default="infonce",
        choices=OBJECTIVES,
        help="'clip-lite' trains keras_clip.CLIPLite (JSD).",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_no_xla_argument(parser)
    parser.add_argument(
        "--output",
        help="Directory for model.keras, tokenizer/, saved_model/ and "
        "demo_report.json (default: a new outputs/demo-DATE-TIME/; "
        "'' saves nothing).",
    )
    add_verbose_argument(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.cli.common import save_model_dir
    from keras_clip.training import train_on_shapes

    for name in ("train_size", "test_size", "epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    output = args.output
    if output is None:
        output = os.path.join("outputs", time.strftime("demo-%Y%m%d-%H%M%S"))
    start = time.time()

    def announce(model):
        print(
            f"keras-clip demo: {device_line()}; {type(model).__name__} "
            f"{args.architecture} ({model.count_params():,} parameters), "
            f"{args.train_size} training pairs, {args.epochs} epochs",
            flush=True,
        )

    report, model, tokenizer = train_on_shapes(
        args.batch_size,
        train_size=args.train_size,
        test_size=args.test_size,
        epochs=args.epochs,
        architecture=args.architecture,
        objective=args.objective,
        seed=args.seed,
        learning_rate=args.learning_rate,
        xla=not args.no_xla,
        verbose=verbosity(args),
        on_model_built=announce,
    )
    report["seconds"] = round(time.time() - start, 1)
    print(
        f"Zero-shot accuracy on {args.test_size} held-out shapes (30 classes, prompts "
        f"like 'a photo of a red circle.'): top-1 {report['zero_shot_top1']:.1%}, "
        f"top-5 {report['zero_shot_top5']:.1%} (chance {report['chance_top1']:.1%})"
    )
    if output:
        save_model_dir(model, tokenizer, output)
        report["output"] = output
        with open(os.path.join(output, "demo_report.json"), "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report))
    if output:
        print(
            f"Saved the model in {output}/ (try: keras-clip zero-shot IMAGE.png "
            f"--classes 'red circle,blue square' --model-dir {output})"
        )
    return report
