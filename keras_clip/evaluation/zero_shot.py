"""Zero-shot classification with prompt ensembling."""

import keras
import numpy as np

from keras_clip.evaluation import prompts
from keras_clip.evaluation.prompts import DEFAULT_TEMPLATES  # noqa: F401 (public name)
from keras_clip.evaluation.retrieval import normalize_rows
from keras_clip.models.preprocessing import image_count
from keras_clip.models.preprocessing import images_for_model


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
        class_names: list of str, or a shipped set's name ("imagenet"; see
            `keras_clip.evaluation.prompts`).
        templates: str templates with one "{}" (or "{c}", as CLIP_benchmark
            writes them) and callables from a class name to a prompt (as
            open_clip ships them), or a shipped set's name
            ("openai_imagenet": OpenAI's 80, "openai_imagenet_7", "default");
            default `DEFAULT_TEMPLATES`.
        batch_size: int. Batch size for encoding.

    Example:

    ```python
    classifier = ZeroShotClassifier(model, tokenizer, ["red circle", ...])
    imagenet = ZeroShotClassifier(model, tokenizer, "imagenet", templates="openai_imagenet")
    probabilities = classifier.predict(images)
    top5 = classifier.top_k(images, k=5)
    ```
    """

    def __init__(self, model, tokenizer, class_names, templates=None, batch_size=256):
        class_names = prompts.class_names(class_names)
        if not class_names:
            raise ValueError("class_names is empty.")
        self.templates = prompts.templates(templates)
        makers = prompts.prompt_makers(self.templates)
        self.model = model
        self.class_names = class_names
        self.batch_size = batch_size
        prompt_texts = [make(name) for name in class_names for make in makers]
        token_ids = np.asarray(tokenizer(prompt_texts))
        embeddings = model.predict({"token_ids": token_ids}, batch_size=batch_size, verbose=0)[
            "text_embeddings"
        ]
        embeddings = embeddings.reshape(len(class_names), len(makers), -1)
        self.class_embeddings = normalize_rows(normalize_rows(embeddings).mean(axis=1))

    def scores(self, images):
        """Logits, float32 (batch, num_classes): the model's logit scale
        times cosine similarity, plus its logit bias (SigLIP)."""
        images = images_for_model(self.model, images)
        image_embeddings = self.model.predict(
            {"images": images}, batch_size=self.batch_size, verbose=0
        )["image_embeddings"]
        scale = float(keras.ops.convert_to_numpy(self.model.logit_scale))
        scores = scale * normalize_rows(image_embeddings) @ self.class_embeddings.T
        bias = getattr(self.model, "logit_bias", None)
        return scores if bias is None else scores + float(keras.ops.convert_to_numpy(bias))

    def predict(self, images):
        """Class probabilities, float32 (batch, num_classes): a softmax over
        the classes, or for a sigmoid-trained model (SigLIP) each class's
        own sigmoid, as SigLIP scores them."""
        scores = self.scores(images)
        if getattr(self.model, "logit_bias", None) is not None:
            return 1.0 / (1.0 + np.exp(-scores))
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
    class_names = prompts.class_names(class_names)
    num_classes = len(class_names)
    if labels.shape != (image_count(images),):
        raise ValueError(
            f"labels must have one entry per image ({image_count(images)}); got shape "
            f"{labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}).")
    classifier = ZeroShotClassifier(model, tokenizer, class_names, templates)
    return classification_report(classifier.top_k(images, k=max(ks)), labels, num_classes, ks)


def classification_report(ranked, labels, num_classes, ks=(1, 5)):
    """Top-k accuracies, per-class accuracy and the confusion matrix.

    Args:
        ranked: int (N, >= max(ks)), class indices best first.
        labels: int (N,), the true classes.
        num_classes: int.
        ks: the k of top-k accuracy.

    Returns:
        the dict `evaluate_zero_shot` describes.
    """
    ranked, labels = np.asarray(ranked), np.asarray(labels)
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
        num_images=int(len(labels)),
    )
    return report
