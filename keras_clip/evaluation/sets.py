"""Zero-shot classification and retrieval over a whole evaluation set.

The sets come from `keras_clip.data.labelled.read_evaluation_set` (class
folders, CLIP_benchmark's webdataset layout); images arrive as uint8 and
are normalised with the model's own constants, batch by batch, with a
progress bar.

Example:

```python
from keras_clip.data.labelled import read_evaluation_set

found = read_evaluation_set("wds_cifar10/", model)  # fitted as the model says
zero_shot_on_set(model, tokenizer, found, templates="openai_imagenet")["top1"]
```
"""

import keras
import numpy as np

from keras_clip.evaluation.retrieval import retrieval_metrics
from keras_clip.evaluation.zero_shot import ZeroShotClassifier
from keras_clip.evaluation.zero_shot import classification_report
from keras_clip.models.preprocessing import image_count
from keras_clip.models.preprocessing import images_for_model


def _check_task(evaluation_set, task):
    if evaluation_set.task != task:
        raise ValueError(
            f"{evaluation_set.origin} is a {evaluation_set.task} set, not a {task} set."
        )


def zero_shot_on_set(model, tokenizer, evaluation_set, templates=None, ks=(1, 5), verbose=1):
    """Zero-shot top-k, per-class accuracy and confusion on a labelled set.

    Args:
        model: a `keras_clip.CLIP`.
        tokenizer: callable from strings to token ids.
        evaluation_set: a classification `EvaluationSet`.
        templates: as `ZeroShotClassifier` takes them; default the set's
            own templates (CLIP_benchmark's file), else `DEFAULT_TEMPLATES`.
        ks: the k of top-k accuracy.
        verbose: 0 silent, 1 a progress bar.

    Returns:
        `evaluate_zero_shot`'s dict, with "class_names", "num_templates"
        and "skipped" (the set's skipped samples by reason).
    """
    _check_task(evaluation_set, "classification")
    templates = templates if templates is not None else evaluation_set.templates
    class_names = evaluation_set.class_names
    classifier = ZeroShotClassifier(model, tokenizer, class_names, templates)
    ranked, labels = [], []
    progress = keras.utils.Progbar(None, unit_name="image", verbose=verbose)
    for batch in evaluation_set.batches.as_numpy_iterator():
        ranked.append(classifier.top_k(batch["images"], k=max(ks)))
        labels.append(batch["labels"])
        progress.add(len(batch["labels"]))
    if not labels:
        raise ValueError(f"{evaluation_set.origin} has no usable labelled image.")
    labels = np.concatenate(labels)
    if labels.max() >= len(class_names):
        raise ValueError(
            f"{evaluation_set.origin} has label {labels.max()}, but only "
            f"{len(class_names)} class names."
        )
    report = classification_report(np.concatenate(ranked), labels, len(class_names), ks)
    report.update(
        class_names=list(class_names),
        num_templates=len(classifier.templates),
        skipped=evaluation_set.report.counts(),
    )
    return report


def retrieval_on_set(model, tokenizer, evaluation_set, ks=(1, 5, 10), verbose=1):
    """Image-text retrieval recall@k and ranks on a captioned set (each
    image's captions one per line of its text, as CLIP_benchmark reads them).

    Returns:
        `retrieval_metrics`' dict, with "num_images", "num_captions" and
        "skipped".
    """
    _check_task(evaluation_set, "retrieval")
    image_embeddings, captions, caption_to_image = [], [], []
    num_images = 0
    progress = keras.utils.Progbar(None, unit_name="image", verbose=verbose)
    for batch in evaluation_set.batches.as_numpy_iterator():
        images = images_for_model(model, batch["images"])
        image_embeddings.append(model.predict_on_batch({"images": images})["image_embeddings"])
        for text in batch["captions"]:
            lines = [line.strip() for line in text.decode("utf-8").splitlines()]
            lines = [line for line in lines if line]
            captions += lines
            caption_to_image += [num_images] * len(lines)
            num_images += 1
        progress.add(image_count(images))
    if not captions:
        raise ValueError(f"{evaluation_set.origin} has no usable captioned image.")
    token_ids = np.asarray(tokenizer(captions))
    text = model.predict({"token_ids": token_ids}, batch_size=256, verbose=0)["text_embeddings"]
    report = retrieval_metrics(
        np.concatenate(image_embeddings), text, np.asarray(caption_to_image), ks
    )
    report.update(
        num_images=num_images, num_captions=len(captions), skipped=evaluation_set.report.counts()
    )
    return report
