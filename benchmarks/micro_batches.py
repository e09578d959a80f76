"""Peak memory and time of a training step with micro-batches, one JSON line.

Trains "bench-vit" (64x64 images, 64 patches, width 192; 32 tokens) on one global
batch (default 512 pairs) with `CLIP(micro_batches=k)` for k = 1, 4 and 16,
each in its own process so that its peak resident memory is its own.
Reported per k: the median step time over `--repeats` steps (after one
warm-up step) and the growth of peak resident memory during training
over the process's baseline after building the model and the batch. The
loss of the first step is printed too: it is the same for every k (the
whole batch is contrasted), so the peer of each row is the k = 1 row of
the same run. On JAX, where compilation dominates the peak resident
memory, XLA's own figure for the step's scratch memory is added.

    python benchmarks/micro_batches.py [--batch 512] [--backend torch]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def measure(batch_size, micro_batches, repeats):
    """Runs in a child process: one configuration's time and peak memory."""
    import keras
    import numpy as np

    import keras_clip

    keras.utils.set_random_seed(0)
    model = keras_clip.CLIP.from_architecture("bench-vit", micro_batches=micro_batches)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # every step sees the same weights
    rng = np.random.default_rng(0)
    batch = {
        "images": rng.normal(size=(batch_size, 64, 64, 3)).astype("float32"),
        "token_ids": rng.integers(1, 999, size=(batch_size, 32)).astype("int32"),
    }
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first_loss = float(model.train_on_batch(batch, return_dict=True)["loss"])  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(batch)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "micro_batches": micro_batches,
        "loss": round(first_loss, 5),
        "seconds": round(statistics.median(times), 3),
        "peak_memory_growth_mb": round((peak - baseline) / 1024, 1),
    }
    if keras.backend.backend() == "jax":
        result["xla_temp_mb"] = _xla_temporary_megabytes(model, batch)
    return result


def _xla_temporary_megabytes(model, batch):
    """JAX: the compiled loss-and-gradient's scratch memory, from XLA.

    Peak resident memory on JAX is dominated by compilation, so it hides
    the step's own memory; XLA's buffer assignment states it exactly.
    """
    import jax

    state = [
        [v.value for v in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.metrics_variables,
            model.optimizer.variables,
        )
    ]
    grad = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    compiled = (
        jax.jit(lambda s, x: grad(*s[:3], x, None, None, training=True, optimizer_variables=s[3]))
        .lower(state, batch)
        .compile()
    )
    return round(compiled.memory_analysis().temp_size_in_bytes / 2**20, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--micro-batches", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.batch, args.child, args.repeats)))
        return
    env = dict(os.environ, KERAS_BACKEND=args.backend, TF_CPP_MIN_LOG_LEVEL="3")
    results = []
    for k in [int(value) for value in args.micro_batches.split(",")]:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(k),
                "--batch",
                str(args.batch),
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if child.returncode != 0:
            results.append(
                {"micro_batches": k, "failed": child.stderr.strip().splitlines()[-1][:200]}
            )
            continue
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(
        json.dumps(
            {
                "benchmark": "micro_batches",
                "backend": args.backend,
                "model": "bench-vit",
                "batch": args.batch,
                "cpu_count": os.cpu_count(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
