"""`keras-clip evaluate`: zero-shot and retrieval reports with PNG plots."""

import json
import os

from keras_clip.cli.common import add_model_arguments
from keras_clip.cli.common import add_verbose_argument
from keras_clip.cli.common import load_model
from keras_clip.cli.common import model_name
from keras_clip.cli.common import verbosity


def add_parser(subparsers):
    evaluate = subparsers.add_parser(
        "evaluate",
        help="Zero-shot and retrieval report with PNG plots.",
        description="Evaluates MODEL_DIR on held-out generated shapes: zero-shot "
        "(top-1/5, per-class, confusion matrix) and image-text retrieval "
        "(recall@k, ranks), or with --data on your own captioned images "
        "(retrieval, several captions per image allowed), or with --zero-shot / "
        "--retrieval on a class folder or a CLIP_benchmark webdataset set. Writes "
        "OUTPUT/report.json, similarity.png (the first 32 images against "
        "their captions) and confusion.png.",
    )
    add_model_arguments(evaluate)
    evaluate.add_argument("--output", required=True)
    evaluate.add_argument(
        "--data",
        help="Your own image-caption data (folder, CSV/JSONL, "
        "TFRecords): retrieval only, no zero-shot.",
    )
    evaluate.add_argument(
        "--zero-shot",
        metavar="DIR",
        help="Zero-shot classification on a class folder (DIR/<class>/*.jpg, names from "
        "the folders or DIR/classnames.txt) or a CLIP_benchmark webdataset set "
        "(DIR/test/nshards.txt, N.tar with .cls labels, classnames.txt, "
        "zeroshot_classification_templates.txt).",
    )
    evaluate.add_argument(
        "--retrieval",
        metavar="DIR",
        help="Image-text retrieval on a CLIP_benchmark webdataset retrieval set "
        "(.txt captions, one per line; dataset_type.txt says 'retrieval'), or on "
        "any captioned source --data takes.",
    )
    evaluate.add_argument(
        "--templates",
        help="With --zero-shot: 'openai_imagenet' (OpenAI's 80), 'openai_imagenet_7', "
        "'default' (6) or a text file with one template per line ('{}' or '{c}' for the "
        "class). Default: the set's own templates file, else 'default'.",
    )
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--num-examples", type=int, default=1000)
    evaluate.add_argument(
        "--seed", type=int, default=10_000, help="Data seed (the demo trains on seed 0)."
    )
    add_verbose_argument(evaluate)
    evaluate.set_defaults(handler=run)
    return evaluate


def encode_pairs(model, tokenizer, source, batch_size=128):
    """Embeds every usable image-caption pair of `source` (with a progress bar).

    Returns:
        image embeddings (num_images, D), caption embeddings (num_captions,
        D), caption_to_image (num_captions,) and the data's `DataReport`.
    """
    import numpy as np

    from keras_clip.data import image_text_dataset
    from keras_clip.models.preprocessing import image_rows
    from keras_clip.utils import ProgressBar

    dataset = image_text_dataset(
        source, tokenizer, model, batch_size, training=False, with_image_index=True
    )
    images, texts, owners = [], [], []
    progress = ProgressBar(unit_name="pair")
    for batch in dataset.as_numpy_iterator():
        new = np.concatenate([[True], batch["image_index"][1:] != batch["image_index"][:-1]])
        if owners and batch["image_index"][0] == owners[-1][-1]:
            new[0] = False
        if new.any():
            images.append(
                model.predict_on_batch({"images": image_rows(batch["images"], new)})[
                    "image_embeddings"
                ]
            )
        texts.append(model.predict_on_batch({"token_ids": batch["token_ids"]})["text_embeddings"])
        owners.append(batch["image_index"])
        progress.add(len(batch["token_ids"]))
    progress.close()
    if not texts:
        raise ValueError(f"{source!r} has no usable image-caption pair.")
    _, caption_to_image = np.unique(np.concatenate(owners), return_inverse=True)
    return (np.concatenate(images), np.concatenate(texts), caption_to_image, dataset.report)


def run(args):
    import numpy as np

    from keras_clip.datasets import shapes
    from keras_clip.evaluation import evaluate_zero_shot
    from keras_clip.evaluation import retrieval_metrics
    from keras_clip.evaluation.plots import save_confusion
    from keras_clip.evaluation.plots import save_similarity

    if args.num_examples < 2:
        raise ValueError("--num-examples must be at least 2.")
    if sum(bool(x) for x in (args.data, args.zero_shot, args.retrieval)) > 1:
        raise ValueError("Pass one of --data, --zero-shot and --retrieval.")
    if args.templates and not args.zero_shot:
        raise ValueError("--templates goes with --zero-shot.")
    if args.retrieval:
        from keras_clip.data.labelled import is_clip_benchmark

        if not is_clip_benchmark(args.retrieval):  # any captioned source, as --data
            args.data, args.retrieval = args.retrieval, None
    model, tokenizer = load_model(args)
    if args.zero_shot or args.retrieval:
        return evaluate_set(args, model, tokenizer)
    if args.data:
        image_embeddings, text_embeddings, caption_to_image, data_report = encode_pairs(
            model, tokenizer, args.data
        )
        report = {
            "model_dir": model_name(args),
            "data": args.data,
            "skipped": data_report.counts(),
            "retrieval": retrieval_metrics(image_embeddings, text_embeddings, caption_to_image),
        }
        first_captions = np.unique(caption_to_image, return_index=True)[1]
        text_embeddings = text_embeddings[first_captions]
    else:
        data = shapes.load(args.num_examples, model.image_size, seed=args.seed)
        images = model.image_preprocessing.normalize(data["images"])
        # Encode the collection once: retrieval and the similarity plot share it.
        embeddings = model.predict(
            {"images": images, "token_ids": tokenizer(data["captions"])},
            batch_size=256,
            verbose=verbosity(args),
        )
        image_embeddings = embeddings["image_embeddings"]
        text_embeddings = embeddings["text_embeddings"]
        report = {
            "model_dir": model_name(args),
            "data": f"shapes (seed {args.seed})",
            "zero_shot": evaluate_zero_shot(
                model, tokenizer, images, data["labels"], data["class_names"]
            ),
            "retrieval": retrieval_metrics(image_embeddings, text_embeddings),
        }
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    batch = min(32, len(image_embeddings))
    similarity = image_embeddings[:batch] @ text_embeddings[:batch].T
    save_similarity(similarity, os.path.join(args.output, "similarity.png"))
    written = "report.json, similarity.png"
    summary = ""
    if "zero_shot" in report:
        save_confusion(
            report["zero_shot"]["confusion_matrix"],
            data["class_names"],
            os.path.join(args.output, "confusion.png"),
        )
        written += ", confusion.png"
        zero_shot = report["zero_shot"]
        summary = f"zero-shot top-1 {zero_shot['top1']:.1%}, top-5 {zero_shot['top5']:.1%}; "
    retrieval = report["retrieval"]
    print(
        f"{summary}retrieval R@1 image->text {retrieval['image_to_text_recall@1']:.1%}, "
        f"text->image {retrieval['text_to_image_recall@1']:.1%}; "
        f"wrote {written} to {args.output}" + skipped_files_note(report.get("skipped", {}))
    )
    return report


def skipped_files_note(skipped):
    """ "; skipped by reason: 2 unreadable image (see report.json)" for the
    counts of skipped examples by reason, or "" when none was skipped."""
    listed = ", ".join(
        f"{count} {reason.replace('_', ' ')}" for reason, count in skipped.items() if count
    )
    return f"; skipped by reason: {listed} (see report.json)" if listed else ""


def evaluate_set(args, model, tokenizer):
    """--zero-shot DIR or --retrieval DIR: report.json (and confusion.png)."""

    from keras_clip.data.labelled import read_evaluation_set
    from keras_clip.evaluation.plots import save_confusion
    from keras_clip.evaluation.sets import retrieval_on_set
    from keras_clip.evaluation.sets import zero_shot_on_set

    root = args.zero_shot or args.retrieval
    found = read_evaluation_set(root, model, args.batch_size)
    verbose = verbosity(args)
    report = {"model_dir": model_name(args), "data": found.origin, "task": found.task}
    os.makedirs(args.output, exist_ok=True)
    if args.zero_shot:
        result = zero_shot_on_set(model, tokenizer, found, args.templates, verbose=verbose)
        names = result["class_names"]
        result["per_class"] = dict(zip(names, result["per_class_accuracy"]))
        report["zero_shot"] = result
        save_confusion(
            result["confusion_matrix"], names, os.path.join(args.output, "confusion.png")
        )
        summary = (
            f"zero-shot top-1 {result['top1']:.1%}, top-5 {result['top5']:.1%} on "
            f"{result['num_images']} images of {len(names)} classes; wrote report.json, "
            "confusion.png"
        )
    else:
        result = retrieval_on_set(model, tokenizer, found, verbose=verbose)
        report["retrieval"] = result
        summary = (
            f"retrieval R@1 image->text {result['image_to_text_recall@1']:.1%}, "
            f"text->image {result['text_to_image_recall@1']:.1%} on {result['num_images']} "
            "images; wrote report.json"
        )
    with open(os.path.join(args.output, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"{summary} to {args.output}" + skipped_files_note(result["skipped"]))
    return report
