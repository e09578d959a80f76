"""The arguments the shapes examples share, for `keras_clip.training.train_on_shapes`
(the same run as `keras-clip demo`). Import it from an example script.

Example:

```python
import shapes_training
from keras_clip.training import train_on_shapes

report, model, tokenizer = train_on_shapes(64, **shapes_training.settings(args))
```
"""

import json

from keras_clip.training import OBJECTIVES

SMOKE = dict(train_size=64, test_size=60, epochs=1, architecture="tiny-vit", xla=False)


def add_common_arguments(parser):
    """--train-size, --test-size, --epochs, --architecture, --objective, --smoke."""
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--architecture", default="shapes-vit")
    parser.add_argument("--objective", default="infonce", choices=OBJECTIVES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smoke", action="store_true", help="A seconds-long run with a tiny model (for tests)."
    )


def settings(args):
    """The run's settings: the arguments, with --smoke's small values."""
    values = {
        k: getattr(args, k)
        for k in ("train_size", "test_size", "epochs", "architecture", "objective", "seed")
    }
    if args.smoke:
        values.update(SMOKE)
    return values


def print_report(report):
    print(json.dumps(report))
