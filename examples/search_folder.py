"""Text-to-image search over a folder of images.

Encodes every image in FOLDER once, in batches, then ranks the images for
each query by cosine similarity to the query's text embedding. --demo-folder writes a
folder of generated shapes images first, so the example runs anywhere.

    python examples/search_folder.py photos/ --query "a dog on a beach"
    python examples/search_folder.py /tmp/shapes --demo-folder 60 \\
        --query "a photo of a red circle." --query "a blue cross"
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zero_shot import add_model_arguments  # noqa: E402
from zero_shot import load  # noqa: E402

SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def write_demo_folder(folder, count):
    """`count` generated shapes images as PNG files named by their caption."""
    import tensorflow as tf

    from keras_clip.datasets import shapes

    os.makedirs(folder, exist_ok=True)
    examples = shapes.load(count, 64, seed=7)
    for index, (image, caption) in enumerate(zip(examples["images"], examples["captions"])):
        name = f"{index:04d}_{caption.replace(' ', '_').strip('.')}.png"
        tf.io.write_file(os.path.join(folder, name), tf.io.encode_png(image))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument(
        "--query", action="append", required=True, help="A text query (repeat for several)."
    )
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--demo-folder",
        type=int,
        default=0,
        metavar="N",
        help="First write N generated shapes images into FOLDER.",
    )
    add_model_arguments(parser)
    args = parser.parse_args(argv)

    import numpy as np

    from keras_clip.data import load_images

    if args.demo_folder:
        write_demo_folder(args.folder, args.demo_folder)
    paths = sorted(
        os.path.join(args.folder, name)
        for name in os.listdir(args.folder)
        if name.lower().endswith(SUFFIXES)
    )
    if not paths:
        parser.error(f"no images in {args.folder}")
    model, tokenizer = load(args)
    preprocessing = model.image_preprocessing
    image_embeddings = np.concatenate(
        [
            model.predict(
                {
                    "images": preprocessing.normalize(
                        load_images(paths[i : i + args.batch_size], preprocessing)
                    )
                },
                verbose=0,
            )["image_embeddings"]
            for i in range(0, len(paths), args.batch_size)
        ]
    )
    text_embeddings = model.predict({"token_ids": tokenizer(args.query)}, verbose=0)[
        "text_embeddings"
    ]
    similarity = text_embeddings @ image_embeddings.T  # both unit length
    results = [
        {
            "query": query,
            "ranked": [
                [os.path.basename(paths[i]), round(float(row[i]), 4)]
                for i in row.argsort()[::-1][: args.top_k]
            ],
        }
        for query, row in zip(args.query, similarity)
    ]
    report = {"images": len(paths), "results": results}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
