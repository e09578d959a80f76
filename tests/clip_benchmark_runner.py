"""CLIP_benchmark 1.6.2 run as its users run it, in a process of its own:

    python -m tests.clip_benchmark_runner convert SPEC.json
    python -m tests.clip_benchmark_runner eval ARGS...   # `clip_benchmark eval ARGS...`

`convert` writes a set with CLIP_benchmark's own converter
(`webdataset_builder.convert_dataset`, or `convert_retrieval_dataset`)
from image files; SPEC holds "output", "items" ([path, label] or [path,
[captions]]), "classes", "templates", "retrieval" and "max_count".
`eval` is its command line with two mends: torchvision's compiled
operators are declared (tests.helpers.allow_torchvision_import; this
torchvision build does not load against this torch), and its top-k
`accuracy`, which fails on NumPy 2 (float() of a 1-element array), counts
the same hits with `.item()`.
"""

import json
import sys

from tests.helpers import allow_torchvision_import


def _accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's top-k accuracy: the share of rows whose target is
    among the k highest logits."""
    ranked = output.topk(max(topk), 1, True, True)[1].t()
    hits = ranked.eq(target.view(1, -1).expand_as(ranked))
    return [hits[:k].reshape(-1).float().sum().item() / len(target) for k in topk]


class _Items(list):
    """A list of (path, label) with the attributes convert_dataset reads."""


def convert(spec_path):
    from clip_benchmark import webdataset_builder

    with open(spec_path) as f:
        spec = json.load(f)
    items = _Items(tuple(item) for item in spec["items"])
    items.classes = spec.get("classes")
    items.templates = spec.get("templates")
    convert = (
        webdataset_builder.convert_retrieval_dataset
        if spec.get("retrieval")
        else webdataset_builder.convert_dataset
    )
    convert(
        items,
        "test",
        spec["output"],
        transform=webdataset_builder.path_to_bytes,
        max_count=spec.get("max_count", 10_000),
        verbose=False,
    )


def main(argv):
    allow_torchvision_import()
    if argv[0] == "convert":
        return convert(argv[1])
    from clip_benchmark import cli
    from clip_benchmark.metrics import zeroshot_classification

    zeroshot_classification.accuracy = _accuracy
    sys.argv = ["clip_benchmark", *argv]
    return cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
