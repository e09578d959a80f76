"""Peak memory and time of InfoNCE and its gradient, chunked and not, one JSON line.

For global batches of 1,024 to 32,768 pairs of 512-d normalised embeddings,
each configuration runs in its own process (so peak resident memory is its
own): "plain" is `objectives.functional.clip_loss` under autodiff, "chunked" is
`keras_clip.objectives.chunked.chunked_infonce` with 1,024-row blocks. Reported:
the loss-and-gradient time (median of `--repeats`, after one warm-up run
for batches up to 8,192; one timed run above) and the growth of peak
resident memory over the process's baseline. A plain run whose logit
matrices (about 6 float32 copies of N x N) would not fit in 70% of the
machine's available memory is reported as skipped, not run.

    python benchmarks/loss_memory.py [--sizes 1024,4096] [--backend tensorflow]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DIM = 512
CHUNK = 1024
PLAIN_COPIES = 6


def _loss_and_gradient(mode, images, texts, scale):
    """Returns a function computing the loss and its gradient w.r.t. all inputs."""
    import keras

    from keras_clip.objectives import chunked as chunked_loss
    from keras_clip.objectives import functional as losses

    def loss(i, t, s):
        if mode == "plain":
            return losses.clip_loss(i, t, s, normalize=False)
        return chunked_loss.chunked_infonce(i, t, i, t, s, 0, CHUNK)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(images), tf.Variable(texts), tf.Variable(scale)]

        def run():
            with tf.GradientTape() as tape:
                value = loss(*variables)
            grads = tape.gradient(value, variables)
            return float(value), [g.numpy() for g in grads]

        return run
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

        def run():
            value, grads = step(images, texts, scale)
            jax.block_until_ready(grads)
            return float(value), grads

        return run
    import torch

    def run():
        tensors = [torch.tensor(a, requires_grad=True) for a in (images, texts, scale)]
        value = loss(*tensors)
        value.backward()
        return float(value), [t.grad for t in tensors]

    return run


def _data(size):
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.normal(size=(size, DIM)).astype("float32")
    texts = images + 2.0 * rng.normal(size=(size, DIM)).astype("float32")
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts, np.array(1 / 0.07, "float32")


def measure(size, mode, repeats):
    """Runs in a child process: one configuration's time and peak memory."""
    _loss_and_gradient(mode, *_data(256))()  # start the runtime before the baseline
    run = _loss_and_gradient(mode, *_data(size))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if size <= 8192:
        run()
    times = []
    for _ in range(repeats if size <= 8192 else 1):
        start = time.perf_counter()
        value, _ = run()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "size": size,
        "mode": mode,
        "loss": round(value, 5),
        "seconds": round(statistics.median(times), 3),
        "peak_memory_growth_mb": round((peak - baseline) / 1024, 1),
    }


def available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048,4096,8192,16384,32768")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1], args.repeats)))
        return
    results = []
    budget = 0.7 * available_bytes()
    env = dict(os.environ, KERAS_BACKEND=args.backend, TF_CPP_MIN_LOG_LEVEL="3")
    for size in [int(s) for s in args.sizes.split(",")]:
        for mode in ("plain", "chunked"):
            needed = PLAIN_COPIES * 4 * size * size
            if mode == "plain" and needed > budget:
                results.append(
                    {"size": size, "mode": mode, "skipped": f"needs about {needed / 2**30:.0f} GiB"}
                )
                continue
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(size),
                    mode,
                    "--repeats",
                    str(args.repeats),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if child.returncode != 0:
                results.append(
                    {
                        "size": size,
                        "mode": mode,
                        "failed": child.stderr.strip().splitlines()[-1][:200],
                    }
                )
                continue
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(
        json.dumps(
            {
                "benchmark": "loss_memory",
                "backend": args.backend,
                "dim": DIM,
                "chunk": CHUNK,
                "cpu_count": os.cpu_count(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
