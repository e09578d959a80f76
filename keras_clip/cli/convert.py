"""`keras-clip convert`: any image-caption source as TFRecord or webdataset shards."""

import json

from keras_clip.cli.common import add_column_arguments


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="Write a folder of captioned images (or other shards) as shards.",
        description="Reads SOURCE (a folder with captions.csv or captions.jsonl, "
        "img2dataset's files, TFRecord or webdataset shards) and writes OUTPUT/shard-*.tar "
        "(webdataset: KEY.jpg + KEY.txt) or OUTPUT/shard-*.tfrecord, with a progress bar. "
        "Rows that cannot be read are skipped and counted.",
    )
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--format", choices=("webdataset", "tfrecord"), default="webdataset")
    parser.add_argument("--shard-size", type=int, default=1000, help="Images per shard.")
    add_column_arguments(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.data import write_shards

    written = write_shards(
        args.source,
        args.output,
        args.format,
        shard_size=args.shard_size,
        image_column=args.image_column,
        caption_column=args.caption_column,
        progress=True,
    )
    print(json.dumps({**written, "shards": len(written["shards"])}))
    return written
