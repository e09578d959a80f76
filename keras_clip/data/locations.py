"""Shard lists: folders, globs, brace ranges and `::`-joined lists.

Paths go through `tf.io.gfile`, so `gs://bucket/shards/{00000..00099}.tar`
works as a local path does.
"""

import itertools
import json
import os
import re

import tensorflow as tf

_BRACES = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def expand_braces(pattern):
    """Brace notation -> list of str, in order.

    `{00000..00099}` is a numeric range (zero-padded to the width of its
    first bound, as webdataset and open_clip write it) and `{a,b}` a list;
    several braces give their product.

    Example:

    ```python
    expand_braces("s/{000..002}.tar")  # ["s/000.tar", "s/001.tar", "s/002.tar"]
    ```
    """
    parts = _BRACES.split(pattern)
    choices = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            choices.append([part])
            continue
        bounds = _RANGE.match(part)
        if bounds:
            low, high = bounds.groups()
            width = len(low) if low.startswith("0") else 0
            step = 1 if int(high) >= int(low) else -1
            numbers = range(int(low), int(high) + step, step)
            choices.append([str(n).zfill(width) for n in numbers])
        else:
            choices.append(part.split(","))
    return ["".join(combination) for combination in itertools.product(*choices)]


def shard_parts(spec, suffix):
    """A shard spec -> one sorted list of paths per part.

    Args:
        spec: a folder (its `*{suffix}` files), a glob, brace notation, a
            single file, several of these joined by "::", or a list of them
            (each "::" piece or list entry is a part: a source that
            `source_weights` can weigh).
        suffix: e.g. ".tar".

    Returns:
        list of lists of str (each glob or folder sorted).
    """
    parts = [spec] if isinstance(spec, str) else list(spec)
    parts = [piece for part in parts for piece in str(part).split("::") if piece]
    found_parts = []
    for part in parts:
        paths = []
        for pattern in expand_braces(part):
            if tf.io.gfile.isdir(pattern):
                found = tf.io.gfile.glob(pattern.rstrip("/") + f"/*{suffix}")
            elif any(c in pattern for c in "*?["):
                found = tf.io.gfile.glob(pattern)
            else:
                found = [pattern] if tf.io.gfile.exists(pattern) else []
            if not found:
                raise FileNotFoundError(f"No {suffix} shards at {pattern!r} (from {part!r}).")
            paths.extend(sorted(found))
        found_parts.append(paths)
    return found_parts


def declared_size(path):
    """A shard's sample count as its writer declared it: img2dataset's
    `NNNNN_stats.json` ("successes") or open_clip's `sizes.json` beside
    the shard; None when neither says."""
    folder, name = os.path.split(path)
    stats = os.path.join(folder, os.path.splitext(name)[0] + "_stats.json")
    if tf.io.gfile.exists(stats):
        with tf.io.gfile.GFile(stats) as f:
            successes = json.load(f).get("successes")
        if isinstance(successes, int):
            return successes
    sizes = os.path.join(folder, "sizes.json")
    if tf.io.gfile.exists(sizes):
        with tf.io.gfile.GFile(sizes) as f:
            declared = json.load(f).get(name)
        if isinstance(declared, int):
            return declared
    return None
