"""Writes docs/contrastive-loss.md: CLIP's loss on three pairs, step by step.

Every number on the page is computed here by keras-clip's own functions
(`keras_clip.objectives.functional`), so the page cannot drift from the code:

    python docs/make_loss_walkthrough.py            # rewrite the page
    python docs/make_loss_walkthrough.py --check    # exit 1 if it is stale
"""

import argparse
import math
import os
import re
import sys

import numpy as np
from keras import ops

from keras_clip.objectives import functional as losses

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contrastive-loss.md")
NAMES = ("cat", "dog", "bird")
TEMPERATURE = 0.07
# Three images and their captions in a 4-d embedding space (before
# normalisation); each caption is close to its own image, not identical.
IMAGES = np.array([[2.0, 0.5, 0.1, 0.3], [0.4, 1.5, 0.6, 0.1], [0.2, 0.3, 1.8, 0.9]], "float32")
TEXTS = np.array([[1.8, 0.9, 0.2, 0.1], [0.6, 1.2, 0.2, 0.5], [0.1, 0.8, 1.5, 0.4]], "float32")


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), "float64")


def _matrix(values, rows=NAMES, columns=NAMES, row_label="image \\ caption", digits=4):
    head = f"| {row_label} | " + " | ".join(columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    body = [
        f"| {r} | " + " | ".join(f"{v:.{digits}f}" for v in row) + " |"
        for r, row in zip(rows, values)
    ]
    return "\n".join([head, rule, *body])


def _vector(values):
    return ", ".join(f"{n}: {v:.4f}" for n, v in zip(NAMES, values))


def walkthrough(normalize):
    """The page section for one setting; returns (markdown, total loss)."""
    scale = 1.0 / TEMPERATURE
    images = _numpy(losses.l2_normalize(IMAGES)) if normalize else IMAGES.astype("float64")
    texts = _numpy(losses.l2_normalize(TEXTS)) if normalize else TEXTS.astype("float64")
    similarity = images @ texts.T
    logits = _numpy(losses.similarity_logits(IMAGES, TEXTS, scale, normalize=normalize))
    row_softmax = np.exp(logits - logits.max(1, keepdims=True))
    row_softmax /= row_softmax.sum(1, keepdims=True)
    column_softmax = np.exp(logits - logits.max(0, keepdims=True))
    column_softmax /= column_softmax.sum(0, keepdims=True)
    image_to_text, text_to_image = (float(x) for x in losses.contrastive_cross_entropies(logits))
    total = float(losses.clip_loss(IMAGES, TEXTS, scale, normalize=normalize))
    name = (
        "with L2 normalisation (what CLIP does)"
        if normalize
        else "without normalisation (a common mistake)"
    )
    lines = [
        f"## {name}",
        "",
        "Cosine similarities `I @ T.T`:" if normalize else "Raw dot products `I @ T.T`:",
        "",
        _matrix(similarity),
        "",
        f"Logits = similarities / temperature = similarities x {scale:.4f}:",
        "",
        _matrix(logits),
        "",
        "Softmax over each row (image -> text: which caption is this image's?):",
        "",
        _matrix(row_softmax),
        "",
        "Softmax over each column (text -> image: which image is this caption's?):",
        "",
        _matrix(column_softmax),
        "",
        "Cross-entropy of each image's row against its own caption, -log p(diagonal): "
        + _vector(-np.log(np.diag(row_softmax)))
        + f"; mean **{image_to_text:.4f}**.",
        "",
        "Cross-entropy of each caption's column against its own image: "
        + _vector(-np.log(np.diag(column_softmax)))
        + f"; mean **{text_to_image:.4f}**.",
        "",
        f"CLIP's loss is the mean of the two directions: ({image_to_text:.4f} + "
        f"{text_to_image:.4f}) / 2 = **{total:.4f}** "
        f"(`keras_clip.objectives.functional.clip_loss(I, T, {scale:.4f}, normalize={normalize})`).",
        "",
    ]
    return "\n".join(lines), total


# The example many tutorials copy: one-hot image embeddings, unnormalised
# text embeddings, logits I @ T.T / 0.07.
TUTORIAL_IMAGES = np.eye(3, dtype="float32")
TUTORIAL_TEXTS = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]], "float32")
TUTORIAL_NAMES = ("1", "2", "3")
QUOTED_LOSS = 0.00016


def tutorial_section():
    """The tutorials' three pairs, computed by the package; where 0.00016
    comes from."""
    scale = 1.0 / TEMPERATURE
    logits = _numpy(
        losses.similarity_logits(TUTORIAL_IMAGES, TUTORIAL_TEXTS, scale, normalize=False)
    )
    rows = np.exp(logits - logits.max(1, keepdims=True))
    rows /= rows.sum(1, keepdims=True)
    columns = np.exp(logits - logits.max(0, keepdims=True))
    columns /= columns.sum(0, keepdims=True)
    image_to_text, text_to_image = (float(x) for x in losses.contrastive_cross_entropies(logits))
    base10 = float(np.mean(-np.log10(np.diag(rows))))
    names = {"rows": ("I1", "I2", "I3"), "columns": ("T1", "T2", "T3")}

    def table(values):
        return _matrix(values, names["rows"], names["columns"], "image \\ text", digits=6)

    per_row = ", ".join(f"{v:.6f}" for v in -np.log(np.diag(rows)))
    return "\n".join(
        [
            "## The tutorials' three pairs, exactly",
            "",
            "A widely copied example takes image embeddings I1 = [1, 0, 0], I2 = [0, 1, 0], "
            "I3 = [0, 0, 1] and text embeddings T1 = [0.9, 0.1, 0.0], T2 = [0.1, 0.8, 0.1], "
            "T3 = [0.0, 0.3, 0.7], and computes logits = I @ T.T / 0.07 without normalising "
            "T (`similarity_logits(I, T, 1 / 0.07, normalize=False)`):",
            "",
            table(logits),
            "",
            "Softmax over each row (image -> text):",
            "",
            table(rows),
            "",
            "Softmax over each column (text -> image):",
            "",
            table(columns),
            "",
            f"Image -> text: -ln p of the diagonal is {per_row}; their mean, the "
            f"image-to-text loss, is **{image_to_text:.6f}**. Text -> image: "
            f"**{text_to_image:.6f}**. CLIP's loss, their mean: "
            f"**{(image_to_text + text_to_image) / 2:.6f}** "
            "(`keras_clip.objectives.functional.contrastive_cross_entropies(logits)`).",
            "",
            f"The copies state the image-to-text loss as {QUOTED_LOSS}. The true value is "
            f"{image_to_text:.6f}, about {image_to_text / QUOTED_LOSS:.2f} times that. The "
            "slip is the logarithm's base: the same mean taken with log10 instead of the "
            f"natural log gives {base10:.6f}, which rounds to {QUOTED_LOSS}; the ratio is "
            f"ln 10 = {math.log(10):.4f}. Cross-entropy losses (and PyTorch's and Keras') use "
            "natural logs.",
            "",
        ]
    )


def page():
    normalized, with_norm = walkthrough(True)
    raw, without_norm = walkthrough(False)
    chance = math.log(len(NAMES))
    multiplied = float(losses.clip_loss(IMAGES, TEXTS, TEMPERATURE))
    return "\n".join(
        [
            "# The contrastive loss on three pairs, step by step",
            "",
            "<!-- Generated by docs/make_loss_walkthrough.py from keras_clip.objectives.functional; "
            "do not edit by hand. -->",
            "",
            "CLIP scores every image of a batch against every caption and asks each image to "
            "pick out its own caption, and each caption its own image. Three pairs, "
            f"{', '.join(NAMES)}, with temperature {TEMPERATURE} (CLIP's initial value; the "
            "logit scale 1/0.07 is learned and clamped at 100):",
            "",
            _matrix(IMAGES, NAMES, ("d1", "d2", "d3", "d4"), "image embedding"),
            "",
            _matrix(TEXTS, NAMES, ("d1", "d2", "d3", "d4"), "caption embedding"),
            "",
            normalized,
            raw,
            tutorial_section(),
            "## Where a hand calculation goes wrong",
            "",
            f"- Skipping the L2 normalisation: the loss goes from {with_norm:.4f} to "
            f"{without_norm:.4f}. Raw dot products divided by 0.07 are large, the softmax "
            "saturates, and a pair wins or loses by the lengths of the vectors, not only by "
            "their angle (see the dog row above); training would then grow the norms "
            "instead of aligning the directions.",
            "- Multiplying by the temperature instead of dividing (0.07 x similarity): all "
            f"logits crowd near 0 and the loss is {multiplied:.4f}, next to log {len(NAMES)} = "
            f"{chance:.4f} (a uniform guess), whatever the embeddings.",
            "- The text -> image direction is a softmax over each *column* of the same logit "
            "matrix (equivalently over the rows of its transpose), not a second softmax over "
            "the rows.",
            "- The two directions are averaged, not summed; the logs are natural logs "
            "(nats), so a uniform guess over N captions costs log N.",
            "- The temperature is learned as a log-scale and the scale is clamped at 100; "
            "compare against `logit_scale` from the model, not 1/0.07, after training.",
            "",
        ]
    )


NUMBER = re.compile(r"-?\d+\.\d+")


def same_page(current, text):
    """Equal text, and numbers equal to one unit in their last printed digit
    (float32 results differ in the last bit between CPUs: AVX-512 or not)."""
    if NUMBER.sub("#", current) != NUMBER.sub("#", text):
        return False
    for old, new in zip(NUMBER.findall(current), NUMBER.findall(text)):
        unit = 10.0 ** -len(old.split(".")[1])
        if abs(float(old) - float(new)) > unit * 1.01:
            return False
    return True


def write_or_check(path, text, script):
    """Writes the page, or with --check exits 1 when `path` differs from
    `text` (see `same_page`)."""
    parser = argparse.ArgumentParser(description=f"Writes {os.path.basename(path)}.")
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 if the page differs from what the code gives."
    )
    args = parser.parse_args()
    if args.check:
        with open(path, encoding="utf-8") as f:
            current = f.read()
        if not same_page(current, text):
            print(f"{path} is stale: run python docs/{script}")
            sys.exit(1)
        print(f"{path} is up to date")
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    write_or_check(PAGE, page(), "make_loss_walkthrough.py")


if __name__ == "__main__":
    main()
