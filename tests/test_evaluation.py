"""Retrieval and zero-shot evaluation against brute-force references."""

import numpy as np
import pytest

import keras_clip
from keras_clip.evaluation import retrieval_metrics
from keras_clip.evaluation import retrieval_ranks
from tests.helpers import tiny_batch
from tests.helpers import to_numpy


def brute_force_rank(scores, positive):
    """Sort candidates by score, wrong ones first among ties; first hit's place."""
    order = np.lexsort((positive.astype(int), -scores))
    return int(np.flatnonzero(positive[order])[0]) + 1


def reference(images, texts, caption_to_image):
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    scores = (images @ texts.T).astype("float32")
    image_ranks = [brute_force_rank(scores[i], caption_to_image == i) for i in range(len(images))]
    text_ranks = [
        brute_force_rank(scores[:, c], np.arange(len(images)) == caption_to_image[c])
        for c in range(len(texts))
    ]
    return np.array(image_ranks), np.array(text_ranks)


@pytest.mark.parametrize("block_size", [3, 1024])
def test_ranks_match_brute_force_with_ties_and_several_captions(block_size):
    rng = np.random.default_rng(0)
    # Few distinct directions, so many exact ties.
    directions = np.eye(4, dtype="float32")
    images = directions[rng.integers(0, 4, 7)]
    caption_to_image = np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6])
    texts = directions[rng.integers(0, 4, len(caption_to_image))]
    expected = reference(images, texts, caption_to_image)
    actual = retrieval_ranks(images, texts, caption_to_image, block_size=block_size)
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_array_equal(actual[1], expected[1])


def test_metrics_on_random_embeddings():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(50, 8)).astype("float32")
    texts = rng.normal(size=(50, 8)).astype("float32")
    image_ranks, text_ranks = reference(images, texts, np.arange(50))
    report = retrieval_metrics(images, texts, ks=(1, 5), block_size=16)
    assert report["image_to_text_recall@5"] == pytest.approx(np.mean(image_ranks <= 5))
    assert report["text_to_image_recall@1"] == pytest.approx(np.mean(text_ranks <= 1))
    assert report["text_to_image_median_rank"] == pytest.approx(np.median(text_ranks))
    assert report["image_to_text_mean_rank"] == pytest.approx(np.mean(image_ranks))
    perfect = retrieval_metrics(images, images)
    assert perfect["image_to_text_recall@1"] == perfect["text_to_image_recall@1"] == 1.0


def test_retrieval_input_errors():
    with pytest.raises(ValueError, match="pass caption_to_image"):
        retrieval_metrics(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="have no caption"):
        retrieval_metrics(np.ones((3, 2)), np.ones((2, 2)), caption_to_image=[0, 0])


def test_evaluate_retrieval_and_zero_shot_on_a_model():
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    batch = tiny_batch()
    report = keras_clip.evaluate_retrieval(model, batch["images"], batch["token_ids"], ks=(1, 3))
    similarity = (
        to_numpy(model.encode_image(batch["images"]))
        @ to_numpy(model.encode_text(batch["token_ids"])).T
    )
    # 0-based rank of each image's own caption among the 8 (no ties here).
    image_ranks = (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    text_ranks = (similarity.T > np.diag(similarity)[:, None]).sum(axis=1)
    for k in (1, 3):
        assert report[f"image_to_text_recall@{k}"] == pytest.approx(np.mean(image_ranks < k))
        assert report[f"text_to_image_recall@{k}"] == pytest.approx(np.mean(text_ranks < k))
    assert report["image_to_text_recall@3"] < 1.0  # an untrained model misses some
    vocabulary = [
        "[PAD]",
        "[UNK]",
        "a",
        "red",
        "blue",
        "green",
        "photo",
        "of",
        ".",
        "[START]",
        "[END]",
    ]
    tokenizer = keras_clip.tokenizers.WordPieceTokenizer(vocabulary, context_length=16)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    classes = ["red", "blue", "green"]
    result = keras_clip.evaluate_zero_shot(
        model, tokenizer, batch["images"], labels, classes, ks=(1, 2)
    )
    scores = keras_clip.ZeroShotClassifier(model, tokenizer, classes).scores(batch["images"])
    ranked = np.argsort(-scores, axis=1)
    assert result["top1"] == pytest.approx(np.mean(ranked[:, 0] == labels))
    assert result["top2"] == pytest.approx(np.mean((ranked[:, :2] == labels[:, None]).any(1)))
    confusion = np.array(result["confusion_matrix"])
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (labels, ranked[:, 0]), 1)
    np.testing.assert_array_equal(confusion, expected)
    with pytest.raises(ValueError, match="labels must lie"):
        keras_clip.evaluate_zero_shot(
            model, tokenizer, batch["images"], labels + 5, ["red", "blue", "green"]
        )


def test_zero_shot_normalises_uint8_images_with_the_model_constants():
    own_preprocessing = keras_clip.ImagePreprocessing(32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    model = keras_clip.CLIP.from_architecture("tiny-vit", image_preprocessing=own_preprocessing)
    tokenizer = keras_clip.tokenizers.WordPieceTokenizer(
        ["[PAD]", "[UNK]", "a", "red", "blue", "photo", "of", ".", "[START]", "[END]"],
        context_length=16,
    )
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, ["red", "blue"])
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    own = classifier.scores(own_preprocessing.normalize(pixels))
    np.testing.assert_allclose(classifier.scores(pixels), own, rtol=1e-6, atol=1e-6)
    openai = classifier.scores(keras_clip.ImagePreprocessing().normalize(pixels))
    assert np.max(np.abs(openai - own)) > 1e-3  # the constants matter


def test_linear_probe_separates_separable_features():
    from keras_clip.evaluation import fit_linear_probe

    rng = np.random.default_rng(2)
    centers = rng.normal(size=(3, 6)) * 5
    labels = rng.integers(0, 3, 150)
    features = centers[labels] + rng.normal(size=(150, 6))
    probe = fit_linear_probe(features[:100], labels[:100], epochs=100)
    predictions = probe.predict(features[100:].astype("float32"), verbose=0).argmax(-1)
    assert np.mean(predictions == labels[100:]) >= 0.96
    with pytest.raises(ValueError, match="Expected features"):
        fit_linear_probe(features, labels[:10])


def test_linear_probe_on_a_model_reports_accuracies():
    model = keras_clip.CLIP.from_architecture("tiny-vit")
    batch = tiny_batch()
    labels = np.array([0, 1] * 4)
    report = keras_clip.evaluation.linear_probe(
        model, batch["images"], labels, batch["images"], labels, epochs=50
    )
    assert report["num_classes"] == 2
    assert report["train_accuracy"] == report["test_accuracy"]  # same images
