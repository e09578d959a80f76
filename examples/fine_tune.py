"""Fine-tune a saved model on new image-caption pairs, zero-shot before and after.

Starts from a saved model directory (default: the committed demo model) or
a checkpoint (--pretrained), keeps its tokenizer and image constants, and
trains a few epochs with a small learning rate on fresh shapes data read
through the tf.data pipeline; reports zero-shot top-1 on held-out images
before and after. Add --output to save the fine-tuned model.

    python examples/fine_tune.py --epochs 2
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zero_shot import add_model_arguments  # noqa: E402
from zero_shot import load  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--output", help="Directory for the fine-tuned model.keras.")
    parser.add_argument("--smoke", action="store_true", help="A seconds-long run (tests).")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.train_size, args.test_size, args.epochs = 64, 60, 1

    import keras

    import keras_clip
    from keras_clip import data
    from keras_clip.datasets import shapes
    from keras_clip.models.optimizer import default_optimizer

    keras.utils.set_random_seed(0)
    model, tokenizer = load(args)
    size = model.image_size
    test = shapes.load(args.test_size, size, seed=999)
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    before = classifier.accuracy(test["images"], test["labels"])
    train = shapes.load(args.train_size, size, seed=2024)
    dataset = data.image_text_dataset(
        (train["images"], train["captions"]),
        tokenizer,
        model,  # the checkpoint's own image preprocessing, taken whole
        args.batch_size,
        seed=0,
        crop_scale=None,  # the captions name sizes and places: a crop would falsify them
    )
    model.compile(optimizer=default_optimizer(args.learning_rate))
    history = model.fit(dataset, epochs=args.epochs, verbose=2)
    after = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES).accuracy(
        test["images"], test["labels"]
    )
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        model.save(os.path.join(args.output, "model.keras"))
        tokenizer.save(os.path.join(args.output, "tokenizer"))
    report = {
        "backend": keras.backend.backend(),
        "epochs": args.epochs,
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "zero_shot_top1_before": round(before, 4),
        "zero_shot_top1_after": round(after, 4),
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
