"""`keras-clip train`: fit a CLIP or CLIP-Lite on a user's image-caption data.

Also holds what the demo shares with it: building a model for an objective
and compiling it with CLIP's optimizer and a warm-up cosine schedule.
"""

import json
import os
import time

OBJECTIVES = ("infonce", "jsd", "siglip", "clip-lite")


def build_model(objective, architecture, tokenizer, image_size=None, micro_batches=1,
                objective_options=None):
    """A `CLIP` (infonce, jsd, siglip) or `CLIPLite` (clip-lite) for
    `tokenizer`; `objective_options` are the loss layer's keyword arguments
    (e.g. {"symmetric": True} with clip-lite)."""
    import keras_clip
    from keras_clip.layers.contrastive_objective import get_objective

    overrides = {"image_size": image_size} if image_size else {}
    overrides["micro_batches"] = micro_batches
    if objective == "clip-lite":
        model_class, layer_name = keras_clip.CLIPLite, "jsd"
    else:
        model_class, layer_name = keras_clip.CLIP, objective
    extra = {"objective": get_objective(layer_name, **(objective_options or {}))}
    return model_class.from_architecture(
        architecture, vocabulary_size=tokenizer.vocabulary_size,
        context_length=tokenizer.context_length, end_token_id=tokenizer.end_token_id,
        **overrides, **extra)


def add_no_xla_argument(parser):
    parser.add_argument("--no-xla", action="store_true",
                        help="TensorFlow: compile the training step without XLA (on by "
                             "default; for a few steps compiling costs more than it saves).")


def compile_for_training(model, total_steps, learning_rate, weight_decay, xla=True):
    """CLIP's AdamW, 10% linear warm-up then cosine decay to 0; XLA on TF
    unless `xla=False` (a few-step run, where compiling costs more than it
    saves)."""
    import keras

    from keras_clip.models.optimizer import default_optimizer

    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total_steps), warmup_target=learning_rate,
        warmup_steps=max(1, total_steps // 10))
    # Keras' "auto" leaves XLA off for TensorFlow on CPU; these models
    # compile, and a step takes about 35% less time with it (but XLA fails
    # under a tf.distribute strategy here, so not there).
    jit = "auto"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        jit = xla and not tf.distribute.has_strategy()
    model.compile(optimizer=default_optimizer(schedule, weight_decay=weight_decay),
                  jit_compile=jit)


def add_train_parser(subparsers):
    parser = subparsers.add_parser(
        "train", help="Train on your own images and captions.",
        description="Trains a CLIP (or CLIP-Lite) on DATA: a folder with captions.csv or "
                    "captions.jsonl, such a file, or TFRecord shards (a folder or a glob). "
                    "Bad entries are skipped and reported each epoch. Writes OUTPUT/"
                    "model.keras, tokenizer/, saved_model/ and train_report.json.")
    parser.add_argument("data", help="Training data (folder, CSV/JSONL, TFRecords).")
    parser.add_argument("--output", required=True, help="Directory for the results.")
    parser.add_argument("--validation", help="Validation data, same forms as DATA.")
    parser.add_argument("--architecture", default="ViT-B-32")
    parser.add_argument("--image-size", type=int,
                        help="Override the architecture's image size.")
    parser.add_argument("--objective", default="infonce", choices=OBJECTIVES,
                        help="'clip-lite' trains keras_clip.CLIPLite (JSD).")
    parser.add_argument("--pretrained",
                        help="Fine-tune a checkpoint (see CLIP.from_pretrained): a Hugging "
                             "Face or open_clip directory, a keras-hub preset, OpenAI's "
                             "file or a state dict (with --pretrained-architecture).")
    parser.add_argument("--pretrained-architecture",
                        help="For a state-dict file: open_clip's name, e.g. ViT-B-32.")
    parser.add_argument("--tokenizer", help="A saved tokenizer directory to use.")
    parser.add_argument("--clip-bpe", help="OpenAI's BPE merges file (.txt or .txt.gz).")
    parser.add_argument("--vocabulary-size", type=int, default=8000,
                        help="WordPiece vocabulary learned from the captions when "
                             "neither --tokenizer nor --clip-bpe is given.")
    parser.add_argument("--context-length", type=int, default=77)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--micro-batches", type=int, default=1,
                        help="Run the towers on this many slices of each batch (less "
                             "memory); the loss still contrasts the whole batch.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.2)
    parser.add_argument("--mixed-precision", choices=("none", "bfloat16", "float16"),
                        default="none")
    parser.add_argument("--horizontal-flip", action="store_true")
    parser.add_argument("--checkpoint-dir",
                        help="Keep last.keras (each epoch), best.keras (lowest val_loss) "
                             "and a backup that resumes an interrupted run.")
    parser.add_argument("--tensorboard", help="TensorBoard log directory.")
    parser.add_argument("--seed", type=int, default=0)
    add_no_xla_argument(parser)
    parser.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2],
                        help="0 silent, 1 progress bar (default on a terminal), 2 one "
                             "line per epoch (default otherwise).")
    parser.set_defaults(handler=run_train)
    return parser


def _tokenizer(args, source):
    import keras_clip

    if args.tokenizer:
        return keras_clip.Tokenizer.load(args.tokenizer)
    if args.clip_bpe:
        return keras_clip.Tokenizer.from_clip_bpe(args.clip_bpe, args.context_length)
    if args.pretrained:
        return keras_clip.Tokenizer.from_pretrained(args.pretrained)
    return keras_clip.Tokenizer.from_corpus(source.all_captions(), args.vocabulary_size,
                                            args.context_length)


def _callbacks(args, train, validation):
    import keras

    from keras_clip.data import DataReportCallback

    from keras_clip.callbacks import StopOnNonFiniteLoss

    callbacks = [DataReportCallback(d) for d in (train, validation) if d is not None]
    callbacks.append(StopOnNonFiniteLoss())
    if args.checkpoint_dir:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        callbacks.append(keras.callbacks.BackupAndRestore(
            os.path.join(args.checkpoint_dir, "backup")))
        callbacks.append(keras.callbacks.ModelCheckpoint(
            os.path.join(args.checkpoint_dir, "last.keras")))
        if validation is not None:
            callbacks.append(keras.callbacks.ModelCheckpoint(
                os.path.join(args.checkpoint_dir, "best.keras"), monitor="val_loss",
                save_best_only=True))
    if args.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise RuntimeError("--tensorboard needs the tensorboard package: "
                               "pip install 'keras-clip[tensorboard]'.") from None
        callbacks.append(keras.callbacks.TensorBoard(args.tensorboard))
    return callbacks


def run_train(args):
    import keras

    from keras_clip import data
    from keras_clip.cli_common import save_model_dir
    from keras_clip.models.architectures import architecture_config

    for name in ("batch_size", "epochs", "vocabulary_size", "context_length",
                 "micro_batches"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    if args.tokenizer and args.clip_bpe:
        raise ValueError("Pass --tokenizer or --clip-bpe, not both.")
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision != "none":
        keras.config.set_dtype_policy(f"mixed_{args.mixed_precision}")
    source = data.read_source(args.data)
    tokenizer = _tokenizer(args, source)
    if args.pretrained:
        if args.objective != "infonce":
            raise ValueError("--pretrained fine-tunes with CLIP's own objective, infonce.")
        import keras_clip

        model = keras_clip.CLIP.from_pretrained(
            args.pretrained, args.pretrained_architecture, micro_batches=args.micro_batches)
        image_size = model.image_encoder.image_size
    else:
        image_size = args.image_size or architecture_config(args.architecture)["image_size"]
        model = build_model(args.objective, args.architecture, tokenizer, args.image_size,
                            args.micro_batches)
    constants = {"mean": model.image_mean, "std": model.image_std}
    train = data.image_text_dataset(args.data, tokenizer, image_size, args.batch_size,
                                    seed=args.seed, horizontal_flip=args.horizontal_flip,
                                    **constants)
    validation = None
    if args.validation:
        validation = data.image_text_dataset(args.validation, tokenizer, image_size,
                                             args.batch_size, training=False, **constants)
    steps_per_epoch = max(1, source.num_images() // args.batch_size)
    compile_for_training(model, args.epochs * steps_per_epoch, args.learning_rate,
                         args.weight_decay, xla=not args.no_xla)
    print(f"keras-clip train: backend={keras.backend.backend()}, {type(model).__name__} "
          f"{args.pretrained or args.architecture} ({model.count_params():,} parameters), "
          f"{source.num_images()} images from {source.origin}, about {steps_per_epoch} "
          f"steps per epoch", flush=True)
    callbacks = _callbacks(args, train, validation)
    from keras_clip.cli_common import default_verbosity

    verbose = default_verbosity() if args.verbose is None else args.verbose
    history = model.fit(train, epochs=args.epochs, validation_data=validation,
                        callbacks=callbacks, verbose=verbose)
    save_model_dir(model, tokenizer, args.output)
    report = {
        "backend": keras.backend.backend(), "model": type(model).__name__,
        "architecture": args.architecture, "pretrained": args.pretrained,
        "objective": args.objective,
        "epochs": args.epochs, "history": {k: [float(v) for v in values]
                                           for k, values in history.history.items()},
        "skipped_per_epoch": {"train": callbacks[0].history,
                              "validation": callbacks[1].history if args.validation else None},
        "seconds": round(time.time() - start, 1), "output": args.output,
    }
    with open(os.path.join(args.output, "train_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: report[k] for k in ("model", "objective", "epochs", "seconds",
                                             "output")}))
    return report
