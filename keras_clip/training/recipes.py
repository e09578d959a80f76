"""What the CLI, the examples and the study share: building a model for an
objective, compiling it for training, the training callbacks, and the
shapes run that `keras-clip demo` and the examples make.

Example:

```python
from keras_clip import training

report, model, tokenizer = training.train_on_shapes(
    32, train_size=256, test_size=60, epochs=1, architecture="tiny-vit")
```
"""

import contextlib
import os
import time

import keras

from keras_clip import objectives

# The objective layers' names (one registry: `keras_clip.objectives.get`),
# and "clip-lite": the JSD objective with CLIP-Lite's projection blocks.
OBJECTIVES = (*objectives.OBJECTIVES, "clip-lite")


def build_model(
    objective, architecture, tokenizer, image_size=None, micro_batches=1, objective_options=None
):
    """A randomly initialised model of a named shape for `tokenizer`.

    Args:
        objective: "infonce", "jsd" or "siglip" (a `CLIP`), or "clip-lite"
            (a `CLIPLite`: JSD with CLIP-Lite's projection blocks).
        architecture: a name from `keras_clip.models.architecture_names()`.
        tokenizer: a `keras_clip.Tokenizer`: its vocabulary size, context
            length and end token size the text tower.
        image_size: int or None, overriding the architecture's.
        micro_batches: int, see `CLIP`.
        objective_options: dict of the objective layer's keyword arguments
            (e.g. {"symmetric": True} with "clip-lite").
    """
    from keras_clip.models import CLIP
    from keras_clip.models import CLIPLite

    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}; expected one of {OBJECTIVES}.")
    model_class = CLIPLite if objective == "clip-lite" else CLIP
    layer_name = "jsd" if objective == "clip-lite" else objective
    overrides = {"image_size": image_size} if image_size else {}
    return model_class.from_architecture(
        architecture,
        vocabulary_size=tokenizer.vocabulary_size,
        context_length=tokenizer.context_length,
        end_token_id=tokenizer.end_token_id,
        micro_batches=micro_batches,
        objective=objectives.get(layer_name, **(objective_options or {})),
        **overrides,
    )


def compile_for_training(model, total_steps, learning_rate, weight_decay, xla=True):
    """CLIP's AdamW with 10% linear warm-up, then cosine decay to 0.

    Args:
        model: a `CLIP`.
        total_steps: int, the run's optimizer steps.
        learning_rate: float, the peak.
        weight_decay: float.
        xla: bool. False keeps XLA off on TensorFlow (best for a few-step
            run, where compiling costs more than it saves); True leaves the
            choice to `CLIP.compile` (`keras_clip.models.compilation`: XLA
            on TensorFlow outside tf.distribute strategies). Other backends
            keep their default either way.
    """
    from keras_clip.models.optimizer import default_optimizer

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total_steps),
        warmup_target=learning_rate,
        warmup_steps=max(1, total_steps // 10),
    )
    jit = "auto" if xla or keras.backend.backend() != "tensorflow" else False
    model.compile(optimizer=default_optimizer(schedule, weight_decay=weight_decay), jit_compile=jit)


def training_callbacks(
    train,
    validation=None,
    checkpoint_dir=None,
    tensorboard=None,
    save_every_steps=None,
    sharded_checkpoints=False,
):
    """The callbacks of a training run.

    Args:
        train, validation: datasets from `data.image_text_dataset` (their
            skipped examples are reported each epoch), or None.
        checkpoint_dir: str or None. Keeps `last.keras` (each epoch),
            `best.keras` (lowest val_loss, with validation data) and, in
            `steps/`, a `checkpoints.StepCheckpoint` from which
            `run_fit` resumes an interrupted run where it stopped.
        tensorboard: str or None, a TensorBoard log directory.
        save_every_steps: int or None: the step checkpoint's frequency
            (None: each epoch's end only).
        sharded_checkpoints: bool (JAX): step checkpoints written shard by
            shard (`StepCheckpoint(sharded=True)`), for sharded weights.

    Returns:
        list of callbacks; the first one or two are the `DataReportCallback`s.
    """
    from keras_clip.data import DataReportCallback
    from keras_clip.training.callbacks import StopOnNonFiniteLoss
    from keras_clip.training.checkpoints import StepCheckpoint

    callbacks = [DataReportCallback(d) for d in (train, validation) if d is not None]
    callbacks.append(StopOnNonFiniteLoss())
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        callbacks.append(
            StepCheckpoint(
                os.path.join(checkpoint_dir, "steps"),
                every_steps=save_every_steps,
                sharded=sharded_checkpoints,
            )
        )
        callbacks.append(
            keras.callbacks.ModelCheckpoint(os.path.join(checkpoint_dir, "last.keras"))
        )
        if validation is not None:
            callbacks.append(
                keras.callbacks.ModelCheckpoint(
                    os.path.join(checkpoint_dir, "best.keras"),
                    monitor="val_loss",
                    save_best_only=True,
                )
            )
    elif save_every_steps:
        raise ValueError("Saving every few steps needs a checkpoint directory.")
    if tensorboard:
        try:
            import tensorboard as _  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "TensorBoard logs need the tensorboard package: "
                "pip install 'keras-clip[tensorboard]'."
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(tensorboard))
    return callbacks


def run_fit(model, train, epochs, callbacks, **fit_arguments):
    """`model.fit(train, epochs=epochs, callbacks=callbacks, ...)`, resumed
    from the `StepCheckpoint` among `callbacks` when there is one (see
    `checkpoints.fit_resumable`)."""
    from keras_clip.training.checkpoints import StepCheckpoint
    from keras_clip.training.checkpoints import fit_resumable

    checkpoint = next((c for c in callbacks if isinstance(c, StepCheckpoint)), None)
    if checkpoint is None:
        return model.fit(train, epochs=epochs, callbacks=callbacks, **fit_arguments)
    return fit_resumable(model, train, epochs, checkpoint, callbacks, **fit_arguments)


def train_on_shapes(
    batch_size,
    train_size=4096,
    test_size=600,
    epochs=3,
    architecture="shapes-vit",
    image_size=None,
    objective="infonce",
    seed=0,
    learning_rate=1e-3,
    weight_decay=0.1,
    objective_options=None,
    xla=True,
    build_scope=None,
    verbose=2,
    on_model_built=None,
):
    """Trains on generated shapes and scores zero-shot on held-out ones.

    The shapes' captions teach a WordPiece vocabulary (1,000 pieces,
    context 16); images go through the tf.data pipeline uncropped: the
    captions name each shape's size and place, which a random crop would
    falsify, and a crop's resampling would also make the training images
    differ from the test ones (a crop of 80-100% of the area cost 33 points
    of zero-shot top-1 in `keras-clip demo`). The test images are classified
    among the 30 colour-shape names with prompt ensembling.

    Args:
        batch_size: int, the global batch (over all devices).
        train_size, test_size, epochs, seed: ints.
        architecture, objective, objective_options: as `build_model`.
        image_size: int or None: the images' side, overriding the
            architecture's (e.g. 32 for a quick run).
        learning_rate, weight_decay: floats, as `compile_for_training`.
        xla: bool, as `compile_for_training`.
        build_scope: a context manager to build the model in (e.g. a
            tf.distribute strategy's scope), or None.
        verbose: Keras' fit verbosity.
        on_model_built: function of the model, called before training (the
            demo prints a line there), or None.

    Returns:
        (report dict, model, tokenizer).
    """
    from keras_clip import data
    from keras_clip.datasets import shapes
    from keras_clip.evaluation import ZeroShotClassifier
    from keras_clip.models.architectures import architecture_config
    from keras_clip.tokenizers import Tokenizer

    if batch_size < 2 or batch_size > train_size:
        raise ValueError(
            f"The batch size must be between 2 and the training set size "
            f"({train_size}); got {batch_size}."
        )
    keras.utils.set_random_seed(seed)
    image_size = image_size or architecture_config(architecture)["image_size"]
    train = shapes.load(train_size, image_size, seed=seed)
    test = shapes.load(test_size, image_size, seed=seed + 10_000)
    tokenizer = Tokenizer.from_corpus(train["captions"], 1000, context_length=16)
    dataset = data.image_text_dataset(
        (train["images"], train["captions"]),
        tokenizer,
        image_size,
        batch_size,
        seed=seed,
        crop_scale=None,
    )
    steps = epochs * (train_size // batch_size)
    with build_scope or contextlib.nullcontext():
        model = build_model(
            objective,
            architecture,
            tokenizer,
            image_size=image_size,
            objective_options=objective_options,
        )
        compile_for_training(model, steps, learning_rate, weight_decay, xla=xla)
    if on_model_built is not None:
        on_model_built(model)
    start = time.time()
    history = model.fit(
        dataset, epochs=epochs, verbose=verbose, callbacks=[data.DataReportCallback(dataset)]
    )
    seconds = time.time() - start
    classifier = ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    images = model.image_preprocessing.normalize(test["images"])
    report = {
        "backend": keras.backend.backend(),
        "model": type(model).__name__,
        "architecture": architecture,
        "objective": objective,
        "global_batch_size": batch_size,
        "epochs": epochs,
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "zero_shot_top1": round(classifier.accuracy(images, test["labels"], k=1), 4),
        "zero_shot_top5": round(classifier.accuracy(images, test["labels"], k=5), 4),
        "chance_top1": round(1 / len(shapes.CLASS_NAMES), 4),
        "num_test_images": test_size,
        "train_seconds": round(seconds, 1),
        "pairs_per_second": round(steps * batch_size / seconds, 1),
    }
    return report, model, tokenizer
