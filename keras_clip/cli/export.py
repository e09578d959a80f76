"""`keras-clip export`: a model as a TF SavedModel, ONNX graphs or OpenVINO
IR (float32 or int8), with the export's fidelity measured."""

import json
import os
import shutil

from keras_clip.cli.common import add_column_arguments
from keras_clip.cli.common import add_model_arguments


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="Export a model as a TF SavedModel, ONNX graphs or OpenVINO IR (int8 too).",
        description="Writes a SavedModel with encode_text, encode_image, encode_image_bytes "
        "and serving_default signatures; or with --format onnx / openvino the image and "
        "text towers (token ids in) and a JSON config; OpenVINO exports also get the "
        "tokenizer as a graph (texts in) where openvino-tokenizers can express it. "
        "OpenVINO exports can be int8 (--int8 weights: weight-only, no data needed; --int8 "
        "static: weights and activations, ranges measured on --calibration). With "
        "--evaluation-set the export's zero-shot top-1 or retrieval recall@1 is compared "
        "with the float model's (and each embedding's cosine to it), written to "
        "OUTPUT/fidelity.json; --max-drop and --min-cosine refuse an export that strays "
        "further, leaving nothing at OUTPUT.",
    )
    add_model_arguments(parser)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--format", choices=("saved_model", "onnx", "openvino"), default="saved_model"
    )
    parser.add_argument("--int8", choices=("weights", "static"), help="OpenVINO: int8 form.")
    parser.add_argument(
        "--calibration",
        metavar="DATA",
        help="--int8 static: your image-caption data (what `train` reads) to measure ranges on.",
    )
    parser.add_argument("--calibration-size", type=int, default=300)
    add_column_arguments(parser)
    parser.add_argument(
        "--evaluation-set",
        metavar="DIR",
        help="A class folder or CLIP_benchmark set (as `evaluate --zero-shot/--retrieval` "
        "reads) to compare the export with the float model on.",
    )
    parser.add_argument(
        "--max-drop",
        type=float,
        help="Refuse the export if zero-shot top-1 (or retrieval recall@1) falls by more "
        "than this many points.",
    )
    parser.add_argument(
        "--min-cosine",
        type=float,
        help="Refuse the export if any embedding's cosine to the float model's is lower.",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args):
    from keras_clip.cli.common import load_model
    from keras_clip.export import export_saved_model

    _check_arguments(args)
    model, tokenizer = load_model(args)
    if args.format == "saved_model":
        export_saved_model(model, tokenizer, args.output)
        print(f"Wrote a SavedModel to {args.output}")
        return None
    # Written beside OUTPUT first: an export that fails its check leaves nothing.
    staging = os.path.abspath(args.output).rstrip(os.sep) + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if args.format == "onnx":
            from keras_clip.export.onnx import export_onnx

            export_onnx(model, staging)
        else:
            _export_openvino(args, model, tokenizer, staging)
        report = _fidelity(args, model, tokenizer, staging)
        written = sorted(os.listdir(staging))
        shutil.copytree(staging, args.output, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    form = f"int8 ({args.int8}) " if args.int8 else ""
    print(f"Wrote the {form}towers to {args.output}: {', '.join(written)}")
    if report:
        print(json.dumps(report))
    return report


def _check_arguments(args):
    if args.format != "openvino" and args.int8:
        raise ValueError("--int8 needs --format openvino.")
    if args.int8 == "static" and not args.calibration:
        raise ValueError("--int8 static needs --calibration DATA (your image-caption pairs).")
    if args.calibration and args.int8 != "static":
        raise ValueError("--calibration is used by --int8 static only.")
    if args.format == "saved_model" and (
        args.evaluation_set or args.max_drop is not None or args.min_cosine is not None
    ):
        raise ValueError(
            "--evaluation-set, --max-drop and --min-cosine need --format onnx/openvino."
        )
    for name in ("max_drop", "min_cosine"):
        if getattr(args, name) is not None and not args.evaluation_set:
            raise ValueError(
                f"--{name.replace('_', '-')} needs --evaluation-set DIR to measure on."
            )


def _export_openvino(args, model, tokenizer, directory):
    from keras_clip.export.openvino import export_openvino

    calibration = None
    if args.calibration:
        from keras_clip.data import image_text_dataset

        calibration = image_text_dataset(
            args.calibration,
            tokenizer,
            model,
            32,
            training=False,
            image_column=args.image_column,
            caption_column=args.caption_column,
        )
    export_openvino(
        model,
        directory,
        args.int8,
        calibration,
        args.calibration_size,
        tokenizer=_tokenizer_for_openvino(tokenizer),
    )


def _tokenizer_for_openvino(tokenizer):
    """`tokenizer` when it can go into the OpenVINO export, else None with
    a line saying why."""
    from keras_clip.export.openvino_tokenizer import openvino_tokenizer_support
    from keras_clip.utils.dependencies import missing_modules

    reason = openvino_tokenizer_support(tokenizer)
    missing = missing_modules(("openvino_tokenizers", "transformers"))
    if reason is None and missing:
        reason = f"{', '.join(missing)} not installed: pip install 'keras-clip[openvino]'"
    if reason is None:
        return tokenizer
    print(f"The tokenizer stays outside the export ({reason}): tokenise with keras_clip.Tokenizer.")
    return None


def _fidelity(args, model, tokenizer, directory):
    """fidelity.json in `directory`, the limits checked; None without
    --evaluation-set."""
    if not args.evaluation_set:
        return None
    from keras_clip.data.labelled import read_evaluation_set
    from keras_clip.export.exported_towers import ExportedTowers
    from keras_clip.export.fidelity import check_fidelity
    from keras_clip.export.fidelity import export_fidelity

    found = read_evaluation_set(args.evaluation_set, model)
    report = export_fidelity(model, ExportedTowers(directory), tokenizer, found)
    report["evaluation_set"] = found.origin
    with open(os.path.join(directory, "fidelity.json"), "w") as f:
        json.dump(report, f, indent=2)
    check_fidelity(report, args.max_drop, args.min_cosine)
    return report
