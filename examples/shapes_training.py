"""What the examples share: shapes data through the tf.data pipeline, a
model, training and a zero-shot score. Import it from an example script.

Example:

>>> from shapes_training import train_on_shapes
>>> report = train_on_shapes(global_batch_size=64, epochs=2)
"""

import contextlib
import json
import time

import keras

import keras_clip
from keras_clip import data
from keras_clip.datasets import shapes
from keras_clip.preprocessing import normalize_images

SMOKE = dict(train_size=64, test_size=60, epochs=1, architecture="tiny-vit", xla=False)


def add_common_arguments(parser):
    """--train-size, --test-size, --epochs, --architecture, --objective, --smoke."""
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--architecture", default="shapes-vit")
    parser.add_argument("--objective", default="infonce",
                        choices=("infonce", "siglip", "jsd", "clip-lite"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true",
                        help="A seconds-long run with a tiny model (for tests).")


def settings(args):
    """The run's settings: the arguments, with --smoke's small values."""
    values = {k: getattr(args, k) for k in ("train_size", "test_size", "epochs",
                                            "architecture", "objective", "seed")}
    if args.smoke:
        values.update(SMOKE)
    return values


def train_on_shapes(global_batch_size, build_scope=None, train_size=4096, test_size=600,
                    epochs=3, architecture="shapes-vit", objective="infonce", seed=0,
                    objective_options=None, xla=True, return_model=False):
    """Trains on generated shapes and returns a dict of results.

    Args:
        global_batch_size: int, the batch over all devices.
        build_scope: a context manager to build the model in (e.g. a
            tf.distribute strategy's scope), or None.
        objective_options: dict of keyword arguments for the objective layer.
        xla: compile with XLA on TensorFlow (off for a few-step run).
        return_model: also return the trained model and its tokenizer.
    """
    from keras_clip.cli_train import build_model
    from keras_clip.cli_train import compile_for_training
    from keras_clip.models.architectures import architecture_config

    keras.utils.set_random_seed(seed)
    image_size = architecture_config(architecture)["image_size"]
    train = shapes.load(train_size, image_size, seed=seed)
    test = shapes.load(test_size, image_size, seed=seed + 10_000)
    tokenizer = keras_clip.Tokenizer.from_corpus(train["captions"], 1000, context_length=16)
    dataset = data.image_text_dataset((train["images"], train["captions"]), tokenizer,
                                      image_size, global_batch_size, seed=seed,
                                      crop_scale=(0.8, 1.0))
    with build_scope or contextlib.nullcontext():
        model = build_model(objective, architecture, tokenizer,
                            objective_options=objective_options)
        compile_for_training(model, epochs * (train_size // global_batch_size), 1e-3, 0.1,
                             xla=xla)
    start = time.time()
    history = model.fit(dataset, epochs=epochs, verbose=2,
                        callbacks=[data.DataReportCallback(dataset)])
    seconds = time.time() - start
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    images = normalize_images(test["images"])
    report = {"backend": keras.backend.backend(), "global_batch_size": global_batch_size,
              "objective": objective, "epochs": epochs,
              "final_loss": round(float(history.history["loss"][-1]), 4),
              "zero_shot_top1": round(classifier.accuracy(images, test["labels"]), 4),
              "chance_top1": round(1 / len(shapes.CLASS_NAMES), 4),
              "train_seconds": round(seconds, 1),
              "pairs_per_second": round(epochs * (train_size // global_batch_size)
                                        * global_batch_size / seconds, 1)}
    return (report, model, tokenizer) if return_model else report


def print_report(report):
    print(json.dumps(report))
