"""`keras-clip export`: a model directory as a TF SavedModel."""

from keras_clip.cli.common import add_model_arguments


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="Export a saved model directory as a TF SavedModel or ONNX graphs.",
        description="Reads MODEL_DIR/model.keras and MODEL_DIR/tokenizer/ and writes a "
        "SavedModel with encode_text, encode_image, encode_image_bytes and "
        "serving_default signatures, or with --format onnx the image and text towers as "
        "OUTPUT/image_encoder.onnx and text_encoder.onnx (token ids in: tokenise with "
        "keras_clip.Tokenizer) and onnx_config.json.",
    )
    add_model_arguments(parser)
    parser.add_argument("--output", required=True)
    parser.add_argument("--format", choices=("saved_model", "onnx"), default="saved_model")
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.cli.common import load_model
    from keras_clip.export import export_saved_model

    model, tokenizer = load_model(args)
    if args.format == "onnx":
        from keras_clip.export.onnx import export_onnx

        export_onnx(model, args.output)
        print(f"Wrote image_encoder.onnx and text_encoder.onnx to {args.output}")
        return
    export_saved_model(model, tokenizer, args.output)
    print(f"Wrote a SavedModel to {args.output}")
