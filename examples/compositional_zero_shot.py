"""Compositional zero-shot: colour-shape pairs never seen together in training.

Holds some colour-shape combinations (by default one per colour, each shape
held out once or twice) out of training entirely; every colour and every
shape still appears in training, in other combinations. After training CLIP
(InfoNCE) and CLIP-Lite (JSD) with the same towers, steps and data, it
measures zero-shot top-1 on images of the held-out combinations (against
all 30 class names, and against the held-out names alone) and on images of
the seen ones, per objective and seed. Writes OUTPUT/compositional.json
and prints one JSON line.

    python examples/compositional_zero_shot.py --output docs/batch_size_study
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from batch_size_study import DEFAULT_OUTPUT  # noqa: E402

HELD_OUT = (
    "red circle",
    "green square",
    "blue triangle",
    "yellow cross",
    "purple diamond",
    "orange circle",
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", default=",".join(HELD_OUT))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--architecture", default="shapes-vit")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pool-size", type=int, default=8192)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--smoke", action="store_true", help="A seconds-long run (tests).")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.steps, args.batch_size = "0", 4, 8
        args.architecture, args.image_size, args.pool_size, args.test_size = (
            "tiny-vit",
            32,
            64,
            30,
        )

    import keras
    import numpy as np

    import keras_clip
    from keras_clip import data
    from keras_clip.datasets import shapes
    from keras_clip.training import build_model
    from keras_clip.training import compile_for_training

    held_out = [c.strip() for c in args.held_out.split(",")]
    seen = [c for c in shapes.CLASS_NAMES if c not in held_out]
    pool = shapes.load(args.pool_size, args.image_size, seed=100, classes=seen)
    tests = {
        "held_out": shapes.load(args.test_size, args.image_size, seed=300, classes=held_out),
        "seen": shapes.load(args.test_size, args.image_size, seed=301, classes=seen),
    }
    tokenizer = keras_clip.Tokenizer.from_corpus(pool["captions"], 1000, context_length=16)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for objective in ("infonce", "clip-lite"):
            keras.utils.set_random_seed(seed)
            dataset = data.image_text_dataset(
                (pool["images"], pool["captions"]),
                tokenizer,
                args.image_size,
                args.batch_size,
                seed=seed,
                crop_scale=(0.8, 1.0),
            ).repeat()
            model = build_model(objective, args.architecture, tokenizer, args.image_size)
            compile_for_training(model, args.steps, 1e-3, 0.1, xla=not args.smoke)
            model.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0)
            run = {"objective": objective, "seed": seed}
            everything = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
            only_held_out = keras_clip.ZeroShotClassifier(model, tokenizer, held_out)
            for name, test in tests.items():
                run[f"{name}_top1_of_30"] = round(
                    everything.accuracy(test["images"], test["labels"]), 4
                )
            labels = np.array(
                [held_out.index(shapes.CLASS_NAMES[i]) for i in tests["held_out"]["labels"]]
            )
            run[f"held_out_top1_of_{len(held_out)}"] = round(
                only_held_out.accuracy(tests["held_out"]["images"], labels), 4
            )
            runs.append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "compositional.json"), "w") as f:
        json.dump({"settings": vars(args), "held_out": held_out, "runs": runs}, f, indent=1)
    report = {"held_out": held_out, "runs": runs}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
