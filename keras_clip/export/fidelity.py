"""How close an exported model stays to the float model it came from.

An int8 or bfloat16 export is faster, and a little different. The report
measures by how much, on data the user names: the cosine of each exported
embedding to the float model's, and, on an evaluation set, the change in
zero-shot top-1 (a classification set) or retrieval recall@1 (a captioned
set), both models run through the same evaluation code.

Example:

```python
towers = ExportedTowers("clip_int8/")
report = export_fidelity(model, towers, tokenizer, read_evaluation_set("digits/", model))
check_fidelity(report, max_drop=1.0, min_cosine=0.99)   # raises when it strays further
```
"""

import numpy as np

from keras_clip.evaluation.sets import retrieval_on_set
from keras_clip.evaluation.sets import zero_shot_on_set
from keras_clip.models.preprocessing import images_for_model

# The metrics compared on each kind of set (float in [0, 1]).
COMPARED = {
    "classification": ("top1",),
    "retrieval": ("image_to_text_recall@1", "text_to_image_recall@1"),
}


class FidelityError(ValueError):
    """An export strays from the float model by more than was allowed."""


class _Recorded:
    """A model whose embeddings are kept as the evaluation asks for them."""

    def __init__(self, model):
        self.model = model
        self.embeddings = {"image_embeddings": [], "text_embeddings": []}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict(self, inputs, **kwargs):
        return self._kept(self.model.predict(inputs, **kwargs))

    def predict_on_batch(self, inputs):
        return self._kept(self.model.predict_on_batch(inputs))

    def _kept(self, outputs):
        for name, values in outputs.items():
            self.embeddings[name].append(np.asarray(values, "float32"))
        return outputs


def export_fidelity(
    model, exported, tokenizer=None, evaluation_set=None, images=None, token_ids=None
):
    """Compares `exported` with `model` on an evaluation set, or on images
    and token ids.

    Args:
        model: the float `keras_clip.CLIP`.
        exported: an `ExportedTowers` (or any model with `predict`).
        tokenizer: the model's tokenizer (needed with `evaluation_set`).
            An export with its own tokenizer graph (`exported.tokenizer`)
            is evaluated with that one, so that it is measured too.
        evaluation_set: a `keras_clip.data.labelled.EvaluationSet`, read
            with the model's preprocessing; both models are evaluated on it.
        images: uint8 or normalised float images, without an evaluation set.
        token_ids: int token ids, without an evaluation set.

    Returns:
        dict: "image_cosine" and "text_cosine" ({"min", "mean"} of each
        embedding's cosine to the float one, over the set's images and its
        prompts or captions), "num_images", "num_texts", and with an
        evaluation set "task" and, per compared metric, {"float",
        "exported", "change_points"} (exported minus float, in points),
        and "tokenizer" ("exported" or "keras-clip": which tokenised the
        export's texts); "precision" and "runtime" when the export says
        them.
    """
    float_model, export = _Recorded(model), _Recorded(exported)
    report = {}
    if evaluation_set is not None:
        if tokenizer is None:
            raise ValueError("export_fidelity needs the tokenizer to evaluate a set.")
        evaluate = zero_shot_on_set if evaluation_set.task == "classification" else retrieval_on_set
        own_tokenizer = getattr(exported, "tokenizer", None)
        results = [
            evaluate(float_model, tokenizer, evaluation_set, verbose=0),
            evaluate(export, own_tokenizer or tokenizer, evaluation_set, verbose=0),
        ]
        report["task"] = evaluation_set.task
        report["tokenizer"] = "exported" if own_tokenizer else "keras-clip"
        for name in COMPARED[evaluation_set.task]:
            before, after = results[0][name], results[1][name]
            report[name] = {
                "float": before,
                "exported": after,
                "change_points": round(100.0 * (after - before), 4),
            }
    elif images is None and token_ids is None:
        raise ValueError("Give an evaluation set, or images and/or token ids to compare on.")
    else:
        if images is not None:
            images = images_for_model(model, np.asarray(images))
        for name, values in (("images", images), ("token_ids", token_ids)):
            if values is not None:
                for m in (float_model, export):
                    m.predict({name: values}, batch_size=64, verbose=0)
    for tower in ("image", "text"):
        cosines = _cosines(float_model, export, f"{tower}_embeddings")
        if cosines.size:
            report[f"{tower}_cosine"] = {"min": float(cosines.min()), "mean": float(cosines.mean())}
            report[f"num_{tower}s"] = int(cosines.size)
    for name in ("precision", "runtime"):
        if hasattr(exported, name):
            report[name] = getattr(exported, name)
    return report


def check_fidelity(report, max_drop=None, min_cosine=None):
    """Raises `FidelityError` naming each limit the report passes.

    Args:
        report: from `export_fidelity`.
        max_drop: float or None. The most points a compared metric (zero-shot
            top-1, retrieval recall@1) may fall.
        min_cosine: float or None. The least cosine any embedding may have
            to the float model's.
    """
    problems = []
    if max_drop is not None:
        for name, values in report.items():
            if isinstance(values, dict) and "change_points" in values:
                if -values["change_points"] > max_drop:
                    problems.append(
                        f"{name} fell {-values['change_points']:.2f} points "
                        f"({values['float']:.4f} -> {values['exported']:.4f}), more than "
                        f"{max_drop}"
                    )
    if min_cosine is not None:
        for tower in ("image", "text"):
            cosine = report.get(f"{tower}_cosine")
            if cosine and cosine["min"] < min_cosine:
                problems.append(
                    f"a {tower} embedding's cosine to the float model is {cosine['min']:.5f}, "
                    f"under {min_cosine}"
                )
    if problems:
        raise FidelityError("The export strays from the float model: " + "; ".join(problems) + ".")


def _cosines(float_model, export, name):
    ours, theirs = float_model.embeddings[name], export.embeddings[name]
    if not ours:
        return np.zeros(0, "float32")
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    if ours.shape != theirs.shape:
        raise ValueError(f"The two models gave {name} of shapes {ours.shape} and {theirs.shape}.")
    ours = ours / np.linalg.norm(ours, axis=-1, keepdims=True)
    theirs = theirs / np.linalg.norm(theirs, axis=-1, keepdims=True)
    return np.sum(ours * theirs, axis=-1)
