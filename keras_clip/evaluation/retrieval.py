"""Image-text retrieval metrics, computed in blocks so N x M never has to fit."""

import numpy as np


def normalize_rows(x):
    """L2-normalises the rows of a NumPy array (float32; zero rows stay 0)."""
    x = np.asarray(x, "float32")
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _summary(ranks, ks, prefix):
    ranks = np.asarray(ranks)
    out = {f"{prefix}_recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    out[f"{prefix}_mean_rank"] = float(np.mean(ranks))
    out[f"{prefix}_median_rank"] = float(np.median(ranks))
    return out


def retrieval_ranks(image_embeddings, text_embeddings, caption_to_image=None, block_size=1024):
    """1-based rank of the first correct match for every query, both ways.

    Ties count against the query: a match ranks behind every wrong
    candidate that scores at least as high. An image's rank is that of the
    best-scoring of its captions.

    Args:
        image_embeddings: float (num_images, D).
        text_embeddings: float (num_captions, D).
        caption_to_image: int (num_captions,), the image each caption
            describes; default: caption i describes image i.
        block_size: int. Queries scored at once (memory: block x others).

    Returns:
        (image_to_text_ranks (num_images,), text_to_image_ranks (num_captions,))
    """
    images, texts = normalize_rows(image_embeddings), normalize_rows(text_embeddings)
    if caption_to_image is None:
        if len(images) != len(texts):
            raise ValueError(
                f"{len(images)} images but {len(texts)} captions: pass "
                "caption_to_image to say which image each caption describes."
            )
        caption_to_image = np.arange(len(texts))
    caption_to_image = np.asarray(caption_to_image)
    if caption_to_image.shape != (len(texts),):
        raise ValueError(
            f"caption_to_image must have one entry per caption ({len(texts)}); "
            f"got shape {caption_to_image.shape}."
        )
    if len(texts) and (caption_to_image.min() < 0 or caption_to_image.max() >= len(images)):
        raise ValueError("caption_to_image names an image index out of range.")
    uncaptioned = np.setdiff1d(np.arange(len(images)), caption_to_image)
    if uncaptioned.size:
        raise ValueError(f"Images {uncaptioned[:10].tolist()} have no caption.")

    text_ranks = np.empty(len(texts), "int64")
    for start in range(0, len(texts), block_size):
        stop = start + block_size
        scores = texts[start:stop] @ images.T
        rows = np.arange(len(scores))
        true = scores[rows, caption_to_image[start:stop]][:, None]
        text_ranks[start:stop] = (scores >= true).sum(axis=1)  # itself counts once

    image_ranks = np.empty(len(images), "int64")
    for start in range(0, len(images), block_size):
        stop = min(start + block_size, len(images))
        scores = images[start:stop] @ texts.T
        positive = caption_to_image[None, :] == np.arange(start, stop)[:, None]
        best = np.where(positive, scores, -np.inf).max(axis=1, keepdims=True)
        rivals = ((scores >= best) & ~positive).sum(axis=1)
        image_ranks[start:stop] = rivals + 1
    return image_ranks, text_ranks


def retrieval_metrics(
    image_embeddings, text_embeddings, caption_to_image=None, ks=(1, 5, 10), block_size=1024
):
    """Recall@k, mean and median rank both ways, from embeddings.

    Example:

    ```python
    retrieval_metrics(image_embeddings, text_embeddings)["text_to_image_recall@1"]
    ```
    """
    image_ranks, text_ranks = retrieval_ranks(
        image_embeddings, text_embeddings, caption_to_image, block_size
    )
    return {
        **_summary(image_ranks, ks, "image_to_text"),
        **_summary(text_ranks, ks, "text_to_image"),
    }


def evaluate_retrieval(
    model,
    images,
    captions,
    tokenizer=None,
    caption_to_image=None,
    ks=(1, 5, 10),
    batch_size=256,
    block_size=1024,
):
    """Encodes a collection with `model` and measures retrieval both ways.

    Args:
        model: a `keras_clip.CLIP`.
        images: float (num_images, H, W, 3), preprocessed as for training.
        captions: int token ids (num_captions, L), or strings with `tokenizer`.
        tokenizer: a callable from strings to token ids, when captions are
            strings.
        caption_to_image: int (num_captions,); default caption i <-> image i.
            Several captions per image are allowed: image-to-text counts a
            hit if any of its captions is in the top k.
        ks: the k of recall@k.
        batch_size: encoding batch size.
        block_size: queries scored at once.

    Returns:
        dict: "image_to_text_recall@k", "text_to_image_recall@k",
        "*_mean_rank", "*_median_rank".

    Example:

    ```python
    evaluate_retrieval(model, images, captions, tokenizer=tokenizer)
    ```
    """
    token_ids = tokenizer(list(captions)) if tokenizer is not None else captions
    image_embeddings = model.predict({"images": images}, batch_size=batch_size, verbose=0)[
        "image_embeddings"
    ]
    text_embeddings = model.predict(
        {"token_ids": np.asarray(token_ids)}, batch_size=batch_size, verbose=0
    )["text_embeddings"]
    return retrieval_metrics(image_embeddings, text_embeddings, caption_to_image, ks, block_size)
