"""Zero-shot classification with prompt ensembling."""

import keras
import numpy as np

from keras_clip.evaluation.retrieval import normalize_rows
from keras_clip.preprocessing import OPENAI_MEAN
from keras_clip.preprocessing import OPENAI_STD
from keras_clip.preprocessing import normalize_images

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a photo of the {}.",
    "a rendering of a {}.",
    "a drawing of a {}.",
)


class ZeroShotClassifier:
    """Classifies images against class names by comparing CLIP embeddings.

    Each class embedding is the renormalised mean of the normalised
    embeddings of its prompts (one per template), as in OpenAI's ImageNet
    zero-shot evaluation. Scores are the model's logit scale times cosine
    similarity; `predict` returns their softmax. Images are float arrays
    normalised as the model expects, or uint8 RGB arrays, which are
    normalised here with the model's own mean and std (a checkpoint's, when
    it came from `CLIP.from_pretrained`).

    Args:
        model: a trained `keras_clip.CLIP` (or CLIPLite).
        tokenizer: a callable mapping a list of str to int token ids, such
            as `keras_clip.Tokenizer`.
        class_names: list of str.
        templates: list of str with one "{}" each; default
            `DEFAULT_TEMPLATES`.
        batch_size: int. Batch size for encoding.

    Example:

    ```python
    classifier = ZeroShotClassifier(model, tokenizer, ["red circle", ...])
    probabilities = classifier.predict(images)
    top5 = classifier.top_k(images, k=5)
    ```
    """

    def __init__(self, model, tokenizer, class_names, templates=None, batch_size=256):
        class_names = [str(name) for name in class_names]
        if not class_names:
            raise ValueError("class_names is empty.")
        templates = list(DEFAULT_TEMPLATES if templates is None else templates)
        bad = [t for t in templates if t.count("{}") != 1]
        if not templates or bad:
            raise ValueError(f"Each template needs exactly one '{{}}'; got {bad or templates}.")
        self.model = model
        self.class_names = class_names
        self.templates = templates
        self.batch_size = batch_size
        prompts = [t.format(name) for name in class_names for t in templates]
        token_ids = np.asarray(tokenizer(prompts))
        embeddings = model.predict({"token_ids": token_ids}, batch_size=batch_size, verbose=0)[
            "text_embeddings"
        ]
        embeddings = embeddings.reshape(len(class_names), len(templates), -1)
        self.class_embeddings = normalize_rows(normalize_rows(embeddings).mean(axis=1))

    def scores(self, images):
        """Scaled cosine similarities, float32 (batch, num_classes)."""
        images = self._as_model_input(images)
        image_embeddings = self.model.predict(
            {"images": images}, batch_size=self.batch_size, verbose=0
        )["image_embeddings"]
        scale = float(keras.ops.convert_to_numpy(self.model.logit_scale))
        return scale * normalize_rows(image_embeddings) @ self.class_embeddings.T

    def _as_model_input(self, images):
        if getattr(images, "dtype", None) != np.uint8:
            return images
        return normalize_images(
            images,
            getattr(self.model, "image_mean", OPENAI_MEAN),
            getattr(self.model, "image_std", OPENAI_STD),
        )

    def predict(self, images):
        """Class probabilities, float32 (batch, num_classes)."""
        scores = self.scores(images)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def top_k(self, images, k=5):
        """Indices of the k most likely classes, best first: (batch, k)."""
        k = min(k, len(self.class_names))
        return np.argsort(-self.scores(images), axis=1, kind="stable")[:, :k]

    def accuracy(self, images, labels, k=1):
        """Share of images whose label is among the top k predictions."""
        labels = np.asarray(labels)
        return float(np.mean(np.any(self.top_k(images, k) == labels[:, None], axis=1)))


def evaluate_zero_shot(model, tokenizer, images, labels, class_names, templates=None, ks=(1, 5)):
    """Zero-shot accuracy of `model` on labelled images.

    Args:
        model: a `keras_clip.CLIP`.
        tokenizer: callable from strings to token ids.
        images: float (N, H, W, 3), preprocessed as for training.
        labels: int (N,), indices into `class_names`.
        class_names: list of str.
        templates: prompt templates (default `DEFAULT_TEMPLATES`).
        ks: the k of top-k accuracy.

    Returns:
        dict: "top{k}" accuracies, "per_class_accuracy" (list, NaN for
        classes without images), "mean_per_class_accuracy",
        "confusion_matrix" (true class x predicted class counts, list of
        lists), "num_images".

    Example:

    ```python
    evaluate_zero_shot(model, tokenizer, images, labels, ["cat", "dog"])
    ```
    """
    labels = np.asarray(labels)
    num_classes = len(class_names)
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must have one entry per image ({len(images)}); got shape {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}).")
    classifier = ZeroShotClassifier(model, tokenizer, class_names, templates)
    ranked = classifier.top_k(images, k=max(ks))
    report = {
        f"top{k}": float(np.mean(np.any(ranked[:, :k] == labels[:, None], axis=1))) for k in ks
    }
    confusion = np.zeros((num_classes, num_classes), "int64")
    np.add.at(confusion, (labels, ranked[:, 0]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    report.update(
        per_class_accuracy=per_class.tolist(),
        mean_per_class_accuracy=float(np.nanmean(per_class)),
        confusion_matrix=confusion.tolist(),
        num_images=int(len(images)),
    )
    return report
