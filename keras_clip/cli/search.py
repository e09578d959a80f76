"""`keras-clip search`: the nearest stored images to a text or an image."""

import os

from keras_clip.cli.common import add_model_arguments
from keras_clip.cli.common import load_model


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "search",
        help="Search what `keras-clip embed` wrote.",
        description="Prints the top-k images of INDEX (an `embed` output) for QUERY: a "
        "text, or the path of an image file. Exact search: faiss when installed, "
        "else NumPy.",
    )
    parser.add_argument("index")
    parser.add_argument("query")
    add_model_arguments(parser)
    parser.add_argument("-k", "--top-k", type=int, default=5)
    parser.add_argument(
        "--modality",
        choices=("image", "text"),
        default="image",
        help="Search the images (default) or the captions.",
    )
    parser.set_defaults(handler=run)
    return parser


def query_embedding(model, tokenizer, query):
    """A text's embedding, or an image file's when `query` is one."""
    import numpy as np

    from keras_clip.evaluation.index import IMAGE_SUFFIXES
    from keras_clip.models.preprocessing import images_for_model

    if os.path.isfile(query) and query.lower().endswith(IMAGE_SUFFIXES):
        from keras_clip.data import load_images

        images = images_for_model(model, load_images([query], model))
        return model.predict_on_batch({"images": images})["image_embeddings"][0]
    token_ids = np.asarray(tokenizer([query]))
    return model.predict_on_batch({"token_ids": token_ids})["text_embeddings"][0]


def run(args):
    from keras_clip.evaluation.index import search_index

    if args.top_k <= 0:
        raise ValueError("--top-k must be positive.")
    model, tokenizer = load_model(args)
    query = query_embedding(model, tokenizer, args.query)
    hits = search_index(args.index, query, args.top_k, args.modality)
    for hit in hits:
        caption = f"  {hit['caption']!r}" if hit["caption"] is not None else ""
        print(f"{hit['rank']:3d}  {hit['score']:.4f}  {hit['image_path']}{caption}")
    return hits
