"""The `keras-clip` command line: one module per subcommand.

The console script enters through `keras_clip_command`, which quiets
TensorFlow's native logging before TensorFlow loads; `main` here runs the
parsed subcommand and turns a bad input into one error line and exit 2.

Example:

```python
from keras_clip import cli

cli.main(["zero-shot", "cat.png", "--classes", "cat,dog"])
```
"""

import argparse
import sys

from keras_clip.cli import convert
from keras_clip.cli import demo
from keras_clip.cli import embed
from keras_clip.cli import evaluate
from keras_clip.cli import export
from keras_clip.cli import search
from keras_clip.cli import train
from keras_clip.cli import zero_shot

SUBCOMMANDS = (demo, train, evaluate, embed, search, export, zero_shot, convert)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-clip",
        description="Train, evaluate and serve CLIP models with Keras 3.",
        epilog="TensorFlow's native logging is off; set TF_CPP_MIN_LOG_LEVEL=0 to see it.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError, RuntimeError, ImportError) as error:
        print(f"keras-clip {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
