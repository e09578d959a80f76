"""`keras-clip train`: fit a CLIP or CLIP-Lite on a user's image-caption data."""

import json
import os
import time

from keras_clip.cli.common import ARCHITECTURE_HELP
from keras_clip.cli.common import add_column_arguments
from keras_clip.cli.common import add_no_xla_argument
from keras_clip.cli.common import add_verbose_argument
from keras_clip.cli.common import device_line
from keras_clip.cli.common import verbosity
from keras_clip.training import OBJECTIVES


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="Train on your own images and captions.",
        description="Trains a CLIP (or CLIP-Lite) on DATA: a folder with captions.csv or "
        "captions.jsonl, such a file, img2dataset's output (webdataset .tar shards, "
        "files or TFRecords), or TFRecord shards: a folder, a glob, brace notation "
        "(shards/{00000..00099}.tar) or several joined by '::'. "
        "Bad entries are skipped and reported each epoch. Writes OUTPUT/"
        "model.keras, tokenizer/, saved_model/ and train_report.json.",
    )
    parser.add_argument("data", help="Training data (folder, CSV/JSONL, shards).")
    parser.add_argument("--output", required=True, help="Directory for the results.")
    parser.add_argument("--validation", help="Validation data, same forms as DATA.")
    parser.add_argument(
        "--architecture",
        default="ViT-B-32",
        help="A named shape, randomly initialised (default: %(default)s): "
        + ARCHITECTURE_HELP
        + ". With --pretrained the checkpoint's own shape is used.",
    )
    parser.add_argument("--image-size", type=int, help="Override the architecture's image size.")
    parser.add_argument(
        "--objective",
        default="infonce",
        choices=OBJECTIVES,
        help="'clip-lite' trains keras_clip.CLIPLite (JSD).",
    )
    parser.add_argument(
        "--pretrained",
        help="Fine-tune a checkpoint (see CLIP.from_pretrained): a Hugging "
        "Face or open_clip directory, a keras-hub preset, OpenAI's "
        "file or a state dict (with --pretrained-architecture).",
    )
    parser.add_argument(
        "--pretrained-architecture", help="For a state-dict file: open_clip's name, e.g. ViT-B-32."
    )
    tuning = parser.add_argument_group("fine-tuning that keeps zero-shot skill")
    tuning.add_argument("--lock-image", action="store_true", help="Freeze the image tower (LiT).")
    tuning.add_argument(
        "--lock-image-unlocked-groups",
        type=int,
        default=0,
        help="With --lock-image: leave this many last groups trainable (1: the "
        "projection; 2: also the last block; as open_clip).",
    )
    tuning.add_argument("--lock-text", action="store_true", help="Freeze the text tower.")
    tuning.add_argument(
        "--lock-text-unlocked-layers",
        type=int,
        default=0,
        help="With --lock-text: leave this many last groups trainable.",
    )
    tuning.add_argument(
        "--wise-ft-alpha",
        type=float,
        help="With --pretrained: save (1 - A) * pretrained + A * fine-tuned weights "
        "(WiSE-FT; 0.5 is the paper's usual choice).",
    )
    parser.add_argument("--tokenizer", help="A saved tokenizer directory to use.")
    parser.add_argument("--clip-bpe", help="OpenAI's BPE merges file (.txt or .txt.gz).")
    parser.add_argument(
        "--vocabulary-size",
        type=int,
        default=8000,
        help="WordPiece vocabulary learned from the captions when "
        "neither --tokenizer nor --clip-bpe is given.",
    )
    parser.add_argument("--context-length", type=int, default=77)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--micro-batches",
        type=int,
        default=1,
        help="Run the towers on this many slices of each batch (less "
        "memory); the loss still contrasts the whole batch.",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--train-num-samples",
        type=int,
        help="An epoch is this many samples, not one pass over DATA (as in open_clip).",
    )
    parser.add_argument(
        "--dataset-resampled",
        action="store_true",
        help="Draw shards with replacement each pass (shards only; with --train-num-samples).",
    )
    parser.add_argument(
        "--train-data-upsampling-factors",
        help="With --dataset-resampled and DATA as sources joined by '::': a weight per "
        "source, joined the same way (e.g. 1::2), as in open_clip.",
    )
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.2)
    parser.add_argument(
        "--mixed-precision", choices=("none", "bfloat16", "float16"), default="none"
    )
    parser.add_argument("--horizontal-flip", action="store_true")
    parser.add_argument(
        "--fsdp",
        action="store_true",
        help="JAX: shard the weights and optimizer state over every device, with the "
        "batch (fully sharded data parallel; keras_clip.models.FullyShardedDataParallel); "
        "step checkpoints are then written shard by shard (Orbax).",
    )
    parser.add_argument(
        "--checkpoint-dir",
        help="Keep last.keras (each epoch), best.keras (lowest val_loss) "
        "and step checkpoints (steps/) from which the same command resumes an "
        "interrupted run at its last saved step.",
    )
    parser.add_argument(
        "--save-every-steps",
        type=int,
        help="With --checkpoint-dir: save the training state every this many steps "
        "(default: at each epoch's end).",
    )
    parser.add_argument("--tensorboard", help="TensorBoard log directory.")
    parser.add_argument("--seed", type=int, default=0)
    add_column_arguments(parser)
    add_no_xla_argument(parser)
    add_verbose_argument(parser)
    parser.set_defaults(handler=run)
    return parser


def _tokenizer(args, source):
    from keras_clip.tokenizers import Tokenizer

    if args.tokenizer:
        return Tokenizer.load(args.tokenizer)
    if args.clip_bpe:
        return Tokenizer.from_clip_bpe(args.clip_bpe, args.context_length)
    if args.pretrained:
        return Tokenizer.from_pretrained(args.pretrained)
    return Tokenizer.from_corpus(source.all_captions(), args.vocabulary_size, args.context_length)


def _lock(model, args):
    from keras_clip import lock_tower

    if args.lock_image_unlocked_groups and not args.lock_image:
        raise ValueError("--lock-image-unlocked-groups goes with --lock-image.")
    if args.lock_text_unlocked_layers and not args.lock_text:
        raise ValueError("--lock-text-unlocked-layers goes with --lock-text.")
    if args.lock_image:
        lock_tower(model, "image", args.lock_image_unlocked_groups)
    if args.lock_text:
        lock_tower(model, "text", args.lock_text_unlocked_layers)


def _upsampling_factors(text):
    if text is None:
        return None
    try:
        return [float(factor) for factor in text.split("::")]
    except ValueError:
        raise ValueError(
            f"--train-data-upsampling-factors takes numbers joined by '::'; got {text!r}."
        ) from None


def run(args):
    import keras

    from keras_clip import data
    from keras_clip.cli.common import save_model_dir
    from keras_clip.training import build_model
    from keras_clip.training import compile_for_training
    from keras_clip.training import run_fit
    from keras_clip.training import training_callbacks

    for name in ("batch_size", "epochs", "vocabulary_size", "context_length", "micro_batches"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive.")
    if args.tokenizer and args.clip_bpe:
        raise ValueError("Pass --tokenizer or --clip-bpe, not both.")
    if args.wise_ft_alpha is not None and not args.pretrained:
        raise ValueError("--wise-ft-alpha interpolates with --pretrained's weights: pass both.")
    start = time.time()
    keras.utils.set_random_seed(args.seed)
    if args.fsdp:  # before the model and its optimizer: their variables are made sharded
        from keras_clip.models import FullyShardedDataParallel

        keras.distribution.set_distribution(FullyShardedDataParallel())
    if args.mixed_precision != "none":
        keras.config.set_dtype_policy(f"mixed_{args.mixed_precision}")
    columns = {"image_column": args.image_column, "caption_column": args.caption_column}
    source = data.read_source(args.data, **columns)
    tokenizer = _tokenizer(args, source)
    if args.pretrained:
        if args.objective != "infonce":
            raise ValueError("--pretrained fine-tunes with CLIP's own objective, infonce.")
        import keras_clip

        model = keras_clip.CLIP.from_pretrained(
            args.pretrained, args.pretrained_architecture, micro_batches=args.micro_batches
        )
    else:
        model = build_model(
            args.objective, args.architecture, tokenizer, args.image_size, args.micro_batches
        )
    _lock(model, args)
    train = data.image_text_dataset(
        args.data,
        tokenizer,
        model,
        args.batch_size,
        seed=args.seed,
        horizontal_flip=args.horizontal_flip,
        num_samples=args.train_num_samples,
        resampled=args.dataset_resampled,
        source_weights=_upsampling_factors(args.train_data_upsampling_factors),
        **columns,
    )
    validation = None
    if args.validation:
        validation = data.image_text_dataset(
            args.validation, tokenizer, model, args.batch_size, training=False
        )
    samples = args.train_num_samples or source.num_images()
    steps_per_epoch = max(1, samples // args.batch_size)
    compile_for_training(
        model,
        args.epochs * steps_per_epoch,
        args.learning_rate,
        args.weight_decay,
        xla=not args.no_xla,
    )
    print(
        f"keras-clip train: {device_line()}; {type(model).__name__} "
        f"{args.pretrained or args.architecture} ({model.count_params():,} parameters), "
        f"{source.num_images()} images from {source.origin}, about {steps_per_epoch} "
        f"steps per epoch",
        flush=True,
    )
    callbacks = training_callbacks(
        train,
        validation,
        args.checkpoint_dir,
        args.tensorboard,
        args.save_every_steps,
        sharded_checkpoints=args.fsdp,
    )
    history = run_fit(
        model, train, args.epochs, callbacks, validation_data=validation, verbose=verbosity(args)
    )
    if args.fsdp:  # the saved copy and its export gather the weights on one device
        keras.distribution.set_distribution(None)
    if args.wise_ft_alpha is not None:
        from keras_clip import CLIP
        from keras_clip import interpolate_weights

        zero_shot = CLIP.from_pretrained(args.pretrained, args.pretrained_architecture)
        model = interpolate_weights(zero_shot, model, args.wise_ft_alpha)
    save_model_dir(model, tokenizer, args.output)
    report = {
        "backend": keras.backend.backend(),
        "model": type(model).__name__,
        "architecture": args.architecture,
        "pretrained": args.pretrained,
        "objective": args.objective,
        "locked": [t for t in ("image", "text") if getattr(args, f"lock_{t}")],
        "wise_ft_alpha": args.wise_ft_alpha,
        "fsdp_devices": len(keras.distribution.list_devices()) if args.fsdp else None,
        "epochs": args.epochs,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "skipped_per_epoch": {
            "train": callbacks[0].history,
            "validation": callbacks[1].history if args.validation else None,
        },
        "seconds": round(time.time() - start, 1),
        "output": args.output,
    }
    with open(os.path.join(args.output, "train_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: report[k] for k in ("model", "objective", "epochs", "seconds", "output")}))
    return report
