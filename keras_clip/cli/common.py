"""What the keras-clip commands share: the model directory layout, progress
settings and the line that says where training runs."""

import os
import sys

from keras_clip.models.architectures import KERAS_CLIP_ARCHITECTURES

# What --architecture takes (keras_clip.models.architecture_names()).
ARCHITECTURE_HELP = (
    ", ".join(KERAS_CLIP_ARCHITECTURES) + ", or an open_clip name (ViT-B-32; "
    "ViT-B-32-quickgelu for OpenAI's activation; RN50, ViT-L-14, ViT-H-14, ...)"
)

# The demo model the repository ships, found from the package (not the
# working directory): the commands default to it from any folder.
SHIPPED_MODEL = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "saved_models",
    "shapes_clip",
)


def default_verbosity():
    """Keras progress bars on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def add_verbose_argument(parser):
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        choices=[0, 1, 2],
        help="0 silent, 1 progress bar (default on a terminal), 2 one "
        "line per epoch (default otherwise).",
    )


def add_column_arguments(parser):
    """--image-column/--caption-column: which columns, features or
    webdataset members hold the image and the caption."""
    parser.add_argument(
        "--image-column",
        help="CSV column, JSONL key or TFRecord feature of the image; for webdataset "
        "shards its extensions, e.g. 'jpg;png'.",
    )
    parser.add_argument(
        "--caption-column",
        help="CSV column, JSONL key or TFRecord feature of the caption; for webdataset "
        "shards 'txt' (default) or 'json:FIELD'.",
    )


def add_no_xla_argument(parser):
    parser.add_argument(
        "--no-xla",
        action="store_true",
        help="TensorFlow: compile the training step without XLA (on by "
        "default; for a few steps compiling costs more than it saves).",
    )


def verbosity(args):
    return default_verbosity() if args.verbose is None else args.verbose


def device_line():
    """One line naming the backend and the devices Keras computes on."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    else:
        devices = keras.distribution.list_devices()
    accelerators = [d for d in devices if not d.lower().startswith("cpu")]
    where = ", ".join(accelerators) if accelerators else f"CPU ({os.cpu_count()} cores)"
    return f"backend {backend}, computing on {where}"


def save_model_dir(model, tokenizer, directory, saved_model=True):
    """model.keras + tokenizer/ + saved_model/ (the layout `zero-shot` reads;
    saved_model/ only if `saved_model`).

    Saves an inference copy: the same weights without the optimizer's state
    (which would more than double the files).
    """
    from keras_clip.export import export_saved_model

    os.makedirs(directory, exist_ok=True)
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.save(os.path.join(directory, "model.keras"))
    tokenizer.save(os.path.join(directory, "tokenizer"))
    if saved_model:
        export_saved_model(copy, tokenizer, os.path.join(directory, "saved_model"))


def add_model_arguments(parser):
    """The model a command uses: --model-dir (ours), or --pretrained (any
    checkpoint `CLIP.from_pretrained` reads, with its tokenizer)."""
    group = parser.add_argument_group("model (one of)")
    group.add_argument(
        "--model-dir",
        help="model.keras + tokenizer/ from `keras-clip train` or `demo` "
        "(default: the shipped demo model).",
    )
    group.add_argument(
        "--pretrained",
        help="A published checkpoint instead: a Hugging Face CLIPModel or SiglipModel "
        "directory, an open_clip directory or state dict, OpenAI's file or a keras-hub "
        "preset (see CLIP.from_pretrained); its tokenizer is read from the same path.",
    )
    group.add_argument(
        "--pretrained-architecture",
        help="For a state-dict file: open_clip's name (ViT-B-32-quickgelu, ...).",
    )
    group.add_argument(
        "--pretrained-tokenizer",
        help="The tokenizer's files where --pretrained has none (OpenAI's .pt: "
        "bpe_simple_vocab_16e6.txt.gz).",
    )


def load_model(args):
    """(model, tokenizer) named by `add_model_arguments`' options."""
    if not args.pretrained:
        if args.pretrained_architecture or args.pretrained_tokenizer:
            raise ValueError(
                "--pretrained-architecture and --pretrained-tokenizer need --pretrained."
            )
        return load_model_dir(args.model_dir or SHIPPED_MODEL)
    if args.model_dir:
        raise ValueError("Pass --model-dir or --pretrained, not both.")
    from keras_clip.models import CLIP
    from keras_clip.tokenizers import Tokenizer

    model = CLIP.from_pretrained(args.pretrained, args.pretrained_architecture)
    tokenizer = Tokenizer.from_pretrained(args.pretrained_tokenizer or args.pretrained)
    return model, tokenizer


def model_name(args):
    """Where the model came from, for reports."""
    return args.pretrained or args.model_dir or SHIPPED_MODEL


def load_model_dir(directory):
    """Loads the model and tokenizer that `save_model_dir` wrote."""
    import keras

    from keras_clip.tokenizers import Tokenizer

    model_path = os.path.join(directory, "model.keras")
    if directory == SHIPPED_MODEL and not os.path.exists(model_path):
        raise FileNotFoundError(
            "This install has no shipped demo model (it comes with a source checkout of "
            "keras-clip, in saved_models/shapes_clip): pass --model-dir DIR, or run "
            "`keras-clip demo --output DIR` to make one."
        )
    if not os.path.exists(model_path):
        raise FileNotFoundError(
            f"No model.keras in {directory!r}; run `keras-clip demo` or `keras-clip train` first."
        )
    model = keras.saving.load_model(model_path)
    return model, Tokenizer.load(os.path.join(directory, "tokenizer"))
