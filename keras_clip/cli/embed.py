"""`keras-clip embed`: embeddings of a collection in clip-retrieval's layout."""

from keras_clip.cli.common import add_column_arguments
from keras_clip.cli.common import add_model_arguments
from keras_clip.cli.common import load_model


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "embed",
        help="Embed a collection once, for `keras-clip search`.",
        description="Writes the L2-normalised image (and first-caption) embeddings of "
        "SOURCE (a folder of images, captioned data or shards) to OUT in "
        "clip-retrieval's layout: img_emb/img_emb_N.npy, text_emb/text_emb_N.npy, "
        "metadata/metadata_N.parquet, in parts. Run again on the same OUT to resume "
        "after an interruption.",
    )
    parser.add_argument("source")
    parser.add_argument("output")
    add_model_arguments(parser)
    parser.add_argument(
        "--part-size", type=int, default=8192, help="Images per part (a multiple of --batch-size)."
    )
    parser.add_argument("--batch-size", type=int, default=64)
    add_column_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.evaluation.index import embed_collection

    model, tokenizer = load_model(args)
    source = args.source
    if args.image_column or args.caption_column:
        from keras_clip.data import read_source

        source = read_source(source, args.image_column, args.caption_column)
    return embed_collection(model, tokenizer, source, args.output, args.part_size, args.batch_size)
