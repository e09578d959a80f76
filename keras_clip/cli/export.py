"""`keras-clip export`: a model directory as a TF SavedModel."""

from keras_clip.cli.common import SHIPPED_MODEL


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="Export a saved model directory as a TF SavedModel.",
        description="Reads MODEL_DIR/model.keras and MODEL_DIR/tokenizer/ and writes a "
        "SavedModel with encode_text, encode_image, encode_image_bytes and "
        "serving_default signatures.",
    )
    parser.add_argument("--model-dir", default=SHIPPED_MODEL)
    parser.add_argument("--output", required=True)
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.cli.common import load_model_dir
    from keras_clip.export import export_saved_model

    model, tokenizer = load_model_dir(args.model_dir)
    export_saved_model(model, tokenizer, args.output)
    print(f"Wrote a SavedModel to {args.output}")
