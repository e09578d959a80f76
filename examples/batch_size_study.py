"""The batch-size study: CLIP (InfoNCE) against CLIP-Lite (JSD), batch 8 to 128.

CLIP-Lite's claim (Shrivastava et al. 2021) is that its Jensen-Shannon
objective, with one negative per positive, does not need CLIP's large
batches. This trains both (and CLIP-Lite with the symmetric JSD
loss) with the same towers, the same number of steps and the same pool of
generated shapes data at each batch size, for several seeds, and measures
on held-out images:

- zero-shot top-1 over the 30 shape classes (chance 3.3%),
- retrieval recall@1, image to text and text to image,
- each objective's mutual-information estimate during training (InfoNCE's,
  log(batch) - loss, cannot exceed log(batch size); JSD's, log 4 - loss,
  cannot exceed log 4 whatever the batch).

Writes OUTPUT/results.json (every run), OUTPUT/table.md (means and
standard deviations over seeds) and OUTPUT/plot.png, and regenerates
docs/batch-size-study.md from them when OUTPUT is the default (with the
compositional zero-shot results of examples/compositional_zero_shot.py
when OUTPUT/compositional.json exists). --report-only redoes the table,
plot and page from OUTPUT/results.json without training. Runs already in
OUTPUT/results.json (same steps, data and model settings) are kept, so an
interrupted study, or one given more seeds or objectives, only trains what
is missing.

    python examples/batch_size_study.py                 # the documented run
    python examples/batch_size_study.py --smoke --output /tmp/study

The plot needs matplotlib (pip install -e ".[study]"); without it the
script writes everything else and says so.
"""

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "docs", "batch_size_study")
PAGE = os.path.join(ROOT, "docs", "batch-size-study.md")
# name: (label, build_model's objective, the loss layer's options)
VARIANTS = {
    "infonce": ("CLIP (InfoNCE)", "infonce", {}),
    "clip-lite": ("CLIP-Lite (JSD)", "clip-lite", {}),
    "clip-lite-symmetric": ("CLIP-Lite (JSD, symmetric)", "clip-lite", {"symmetric": True}),
}
OBJECTIVES = {name: variant[0] for name, variant in VARIANTS.items()}
ORDER = list(VARIANTS)
# Settings that must match for saved runs to be kept and added to.
SAME_RUN = (
    "steps",
    "points",
    "architecture",
    "image_size",
    "pool_size",
    "test_size",
    "learning_rate",
)
METRICS = ("zero_shot_top1", "image_to_text_r1", "text_to_image_r1", "final_mi")


def train_one(objective, batch_size, seed, args, pool, test, tokenizer):
    """Trains one model for args.steps steps; returns its measurements."""
    import keras
    import numpy as np

    import keras_clip
    from keras_clip import data
    from keras_clip.datasets import shapes
    from keras_clip.training import build_model
    from keras_clip.training import compile_for_training

    keras.utils.set_random_seed(seed)
    dataset = data.image_text_dataset(
        (pool["images"], pool["captions"]),
        tokenizer,
        args.image_size,
        batch_size,
        seed=seed,
        crop_scale=(0.8, 1.0),
    ).repeat()
    _, model_objective, options = VARIANTS[objective]
    model = build_model(
        model_objective, args.architecture, tokenizer, args.image_size, objective_options=options
    )
    compile_for_training(model, args.steps, args.learning_rate, 0.1, xla=not args.smoke)
    start = time.time()
    history = model.fit(
        dataset, epochs=args.points, steps_per_epoch=args.steps // args.points, verbose=0
    )
    seconds = time.time() - start
    images = model.image_preprocessing.normalize(test["images"])
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, shapes.CLASS_NAMES)
    retrieval = keras_clip.evaluate_retrieval(model, images, test["captions"], tokenizer, ks=(1,))
    mi = [round(float(v), 4) for v in history.history["mi"]]
    return {
        "objective": objective,
        "batch_size": batch_size,
        "seed": seed,
        "zero_shot_top1": round(classifier.accuracy(images, test["labels"]), 4),
        "image_to_text_r1": round(retrieval["image_to_text_recall@1"], 4),
        "text_to_image_r1": round(retrieval["text_to_image_recall@1"], 4),
        "mi_over_training": mi,
        "final_mi": mi[-1],
        "log_batch_size": round(float(np.log(batch_size)), 4),
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "seconds": round(seconds, 1),
    }


def summarise(runs):
    """{(objective, batch): {metric: (mean, std)}} over seeds."""
    groups = {}
    for run in runs:
        groups.setdefault((run["objective"], run["batch_size"]), []).append(run)
    return {
        key: {
            m: (statistics.mean(r[m] for r in group), statistics.pstdev(r[m] for r in group))
            for m in METRICS
        }
        for key, group in sorted(
            groups.items(), key=lambda item: (ORDER.index(item[0][0]), item[0][1])
        )
    }


def table(summary, seeds):
    import math

    lines = [
        "| objective | batch | zero-shot top-1 | R@1 image→text | R@1 text→image | "
        "MI estimate (nats) | log(batch) |",
        "|---|---|---|---|---|---|---|",
    ]

    for (objective, batch), values in summary.items():
        cells = [f"{values[m][0]:.3f} ± {values[m][1]:.3f}" for m in METRICS]
        lines.append(
            f"| {OBJECTIVES[objective]} | {batch} | "
            + " | ".join(cells)
            + f" | {math.log(batch):.2f} |"
        )
    lines.append(f"\nMean ± standard deviation over {len(seeds)} seeds ({seeds}).")
    return "\n".join(lines)


def plot(runs, summary, path, test_size):
    try:
        import matplotlib
    except ImportError:  # the table and results are still written
        print('No plot: it needs matplotlib (pip install -e ".[study]").', file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for objective, label in OBJECTIVES.items():
        keys = [k for k in summary if k[0] == objective]
        if not keys:
            continue
        batches = [k[1] for k in keys]
        for axis, metric, title in (
            (axes[0], "zero_shot_top1", "Zero-shot top-1 (30 classes)"),
            (axes[1], "text_to_image_r1", "Retrieval R@1, text→image"),
        ):
            means = [summary[k][metric][0] for k in keys]
            stds = [summary[k][metric][1] for k in keys]
            axis.errorbar(batches, means, yerr=stds, marker="o", capsize=3, label=label)
            axis.set_title(title)
        for run in runs:
            if run["objective"] == objective and run["seed"] == runs[0]["seed"]:
                style = {"infonce": "-", "clip-lite": "--"}.get(objective, ":")
                axes[2].plot(
                    range(1, len(run["mi_over_training"]) + 1),
                    run["mi_over_training"],
                    style,
                    label=f"{label}, batch {run['batch_size']}",
                )
    for axis, chance in ((axes[0], 1 / 30), (axes[1], 1 / test_size)):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size")
        axis.axhline(chance, color="grey", linewidth=0.8, linestyle=":", label="chance")
        axis.legend()
    axes[2].set_title("MI estimate during training (first seed)")
    axes[2].set_xlabel("training checkpoint")
    axes[2].set_ylabel("nats")
    axes[2].legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="8,16,32,64,128")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--objectives",
        default=",".join(VARIANTS),
        help=f"Comma-separated, from {', '.join(VARIANTS)}.",
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument(
        "--points", type=int, default=8, help="How many times the MI estimate is recorded."
    )
    parser.add_argument("--architecture", default="shapes-vit")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pool-size", type=int, default=8192)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Rewrite table, plot and page from OUTPUT/results.json.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="With --report-only: exit 1 if table.md or the page differ "
        "from what results.json gives (writes nothing).",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="Discard OUTPUT/results.json instead of adding to it.",
    )
    parser.add_argument("--smoke", action="store_true", help="A seconds-long run (tests).")
    args = parser.parse_args(argv)
    if args.report_only:
        with open(os.path.join(args.output, "results.json")) as f:
            saved = json.load(f)
        if args.check:
            return check_report(saved["runs"], saved["settings"], args.output)
        return write_report(saved["runs"], saved["settings"], args.output)
    if args.smoke:
        args.batch_sizes, args.seeds, args.steps, args.points = "8", "0", 4, 2
        args.architecture, args.image_size, args.pool_size, args.test_size = (
            "tiny-vit",
            32,
            64,
            30,
        )

    import keras_clip
    from keras_clip.datasets import shapes

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    objectives = args.objectives.split(",")
    unknown = sorted(set(objectives) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"Unknown objectives {unknown}; expected some of {list(VARIANTS)}.")
    runs = [] if args.restart else saved_runs(args)
    done = {(r["objective"], r["batch_size"], r["seed"]) for r in runs}
    pool = shapes.load(args.pool_size, args.image_size, seed=100)
    test = shapes.load(args.test_size, args.image_size, seed=200)
    tokenizer = keras_clip.Tokenizer.from_corpus(pool["captions"], 1000, context_length=16)
    os.makedirs(args.output, exist_ok=True)
    for seed in seeds:
        for objective in objectives:
            for batch_size in batch_sizes:
                if (objective, batch_size, seed) in done:
                    continue
                runs.append(train_one(objective, batch_size, seed, args, pool, test, tokenizer))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
                save_runs(runs, args)
    return write_report(runs, settings_of(runs, args), args.output)


def saved_runs(args):
    """The runs in OUTPUT/results.json, when it was made with the same settings."""
    path = os.path.join(args.output, "results.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        saved = json.load(f)
    differ = [k for k in SAME_RUN if saved["settings"].get(k) != getattr(args, k)]
    if differ:
        raise SystemExit(
            f"{path} was made with other {', '.join(differ)}; pass --restart "
            "to discard it, or another --output."
        )
    print(f"Keeping {len(saved['runs'])} runs from {path}.", file=sys.stderr)
    return saved["runs"]


def settings_of(runs, args):
    """The settings saved with the runs: seeds, batches and objectives as run."""
    settings = dict(vars(args))
    for key, field in (
        ("seeds", "seed"),
        ("batch_sizes", "batch_size"),
        ("objectives", "objective"),
    ):
        values = sorted({r[field] for r in runs}, key=lambda v: (str(type(v)), v))
        settings[key] = ",".join(str(v) for v in values)
    return settings


def save_runs(runs, args):
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"settings": settings_of(runs, args), "runs": runs}, f, indent=1)


def write_report(runs, settings, output):
    """table.md, plot.png and, for the default output, the docs page."""
    seeds = sorted({run["seed"] for run in runs})
    summary = summarise(runs)
    with open(os.path.join(output, "table.md"), "w") as f:
        f.write(table(summary, seeds) + "\n")
    plot(runs, summary, os.path.join(output, "plot.png"), settings["test_size"])
    if os.path.abspath(output) == os.path.abspath(DEFAULT_OUTPUT):
        with open(PAGE, "w", encoding="utf-8") as f:
            f.write(page(summary, seeds, settings, output))
    report = {
        "runs": len(runs),
        "output": output,
        "zero_shot_top1": {
            f"{o}@{b}": round(v["zero_shot_top1"][0], 4) for (o, b), v in summary.items()
        },
    }
    print(json.dumps(report))
    return report


def check_report(runs, settings, output):
    """Exits 1 when table.md or the docs page are not what `runs` give."""
    seeds = sorted({run["seed"] for run in runs})
    summary = summarise(runs)
    expected = {
        os.path.join(output, "table.md"): table(summary, seeds) + "\n",
        PAGE: page(summary, seeds, settings, output),
    }
    for path, text in expected.items():
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                raise SystemExit(f"{path} is stale: run examples/batch_size_study.py --report-only")
    print("up to date")
    return {"checked": sorted(expected)}


def findings(summary):
    """What the numbers say, computed from the means (whichever way they fall)."""
    lines = []
    batches = sorted({b for _, b in summary})
    for batch in batches:
        clip = summary.get(("infonce", batch), {}).get("zero_shot_top1")
        lite = summary.get(("clip-lite", batch), {}).get("zero_shot_top1")
        if clip is None or lite is None:
            continue
        better = "CLIP-Lite" if lite[0] > clip[0] else "CLIP"
        margin = abs(lite[0] - clip[0])
        noise = max(lite[1], clip[1])
        verdict = "within the seeds' spread" if margin <= noise else f"{better} ahead"
        lines.append(
            f"- Zero-shot, batch {batch}: CLIP {clip[0]:.3f}, CLIP-Lite {lite[0]:.3f} "
            f"({verdict}; difference {margin:.3f}, largest std {noise:.3f})."
        )
    for batch in batches:
        lite = summary.get(("clip-lite", batch))
        both_ways = summary.get(("clip-lite-symmetric", batch))
        if lite and both_ways:
            lines.append(
                f"- Symmetric CLIP-Lite, batch {batch}: zero-shot "
                f"{both_ways['zero_shot_top1'][0]:.3f} vs {lite['zero_shot_top1'][0]:.3f}, "
                f"R@1 text→image {both_ways['text_to_image_r1'][0]:.3f} vs "
                f"{lite['text_to_image_r1'][0]:.3f} for one-way CLIP-Lite."
            )
    low, high = batches[0], batches[-1]
    for objective, label in OBJECTIVES.items():
        if (objective, low) not in summary or (objective, high) not in summary:
            continue
        first, last = summary[(objective, low)], summary[(objective, high)]
        lines.append(
            f"- {label}, batch {low} to {high}: retrieval R@1 text→image "
            f"{first['text_to_image_r1'][0]:.3f} to {last['text_to_image_r1'][0]:.3f}, "
            f"image→text {first['image_to_text_r1'][0]:.3f} to "
            f"{last['image_to_text_r1'][0]:.3f}; final MI estimate "
            f"{first['final_mi'][0]:.2f} to {last['final_mi'][0]:.2f} nats."
        )
    return "\n".join(lines)


def _compositional(output):
    path = os.path.join(output, "compositional.json")
    if not os.path.exists(path):
        return "Not run yet: `python examples/compositional_zero_shot.py` writes it.\n"
    with open(path) as f:
        result = json.load(f)
    keys = [k for k in result["runs"][0] if k.endswith(tuple("0123456789")) and "top1" in k]
    lines = [
        f"Held out of training entirely: {', '.join(result['held_out'])}.",
        "",
        "| objective | seed | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for run in result["runs"]:
        lines.append(
            f"| {OBJECTIVES[run['objective']]} | {run['seed']} | "
            + " | ".join(f"{run[k]:.3f}" for k in keys)
            + " |"
        )
    for objective, label in OBJECTIVES.items():
        runs = [r for r in result["runs"] if r["objective"] == objective]
        if runs:
            held = statistics.mean(r["held_out_top1_of_30"] for r in runs)
            seen = statistics.mean(r["seen_top1_of_30"] for r in runs)
            lines.append(
                f"\n{label}: pairs never seen in training scored {held:.3f} top-1 "
                f"against all 30 names, pairs seen in training {seen:.3f} (means "
                f"over seeds)."
            )
    settings = result["settings"]
    lines.append(
        f"\n{settings['steps']} steps at batch {settings['batch_size']}, "
        f"{settings['architecture']}; chance is 1/30 against all names and "
        f"1/{len(result['held_out'])} against the held-out names alone."
    )
    return "\n".join(lines) + "\n"


def _variants(summary):
    if not any(objective == "clip-lite-symmetric" for objective, _ in summary):
        return ""
    return (
        "\nCLIP-Lite (JSD, symmetric) is `JSDLoss(symmetric=True)`: it also scores each "
        "caption\nagainst the next example's image, so two negatives per pair instead of "
        "one."
    )


def page(summary, seeds, settings, output):
    table_text = table(summary, seeds) + "\n"
    return f"""# The batch-size study: CLIP against CLIP-Lite

*Generated by `examples/batch_size_study.py` from `docs/batch_size_study/results.json`;
do not edit. Reproduce with `python examples/batch_size_study.py` (about 70 minutes on 2
CPU cores; it keeps the runs already in results.json and adds the missing ones), or redo this
page from the saved results with `--report-only`. Every run here, like the saved ones, trains
with a random resized crop of 80-100% of the area; `keras-clip demo` no longer crops the shapes
(their captions name sizes and places, and the crop cost the demo 33 points of zero-shot top-1;
CHANGELOG, issue 27), so absolute accuracies here are lower than the demo's.*

CLIP-Lite's claim is that its Jensen-Shannon objective, with one negative per positive,
learns well at batch sizes where CLIP's InfoNCE, whose bound is capped at log(batch), does not.
{"All three" if _variants(summary) else "Both"} were trained here with the same towers ({settings["architecture"]}), the same
{settings["steps"]} steps and the same pool of {settings["pool_size"]} generated shapes
pairs, at each batch size, for seeds {seeds}, and measured on {settings["test_size"]} held-out
images (30 classes; chance 0.033).{_variants(summary)}

![zero-shot, retrieval and MI against batch size](batch_size_study/plot.png)

{table_text}
## What the numbers say

{findings(summary)}

Retrieval ranks each of {settings["test_size"]} held-out images among {settings["test_size"]}
captions (chance {1 / settings["test_size"]:.4f}). The captions also name size and position,
so near-duplicates compete. A plausible reading: telling them apart rewards the many hard
negatives of a large batch, which InfoNCE uses and JSD's single negative does not, while
zero-shot only has to tell 30 colour-shape names apart.

The MI columns are each objective's own estimate on its last training batches: InfoNCE's
log(batch) - loss (never above log(batch)) and JSD's log 4 - loss (never above log 4 = 1.386,
whatever the batch). They are not comparable with each other, only across batch sizes
([jsd-and-the-critic.md](jsd-and-the-critic.md)). Equal steps means that the larger batches
also see more pairs. These runs are short ({settings["steps"]} steps; `keras-clip demo` trains
longer), so read the trends, not the levels.

## Compositional zero-shot

{_compositional(output)}"""


if __name__ == "__main__":
    main()
