"""ViT-B/32 training throughput and MFU in bfloat16 on one accelerator, one
JSON line (run by `benchmarks/device.sh` on a lent GPU machine).

Systems: `keras-clip/jax` and `keras-clip/torch` (`CLIP.from_architecture(
"ViT-B-32-quickgelu")`, transformers' activation, under the "mixed_bfloat16" policy, `compile()` with its
defaults, `train_on_batch` on inputs already on the device), and
`transformers` (`CLIPModel` with ViT-B/32 shapes under torch's bfloat16
autocast, AdamW). Token ids are random ids of context 77 made here (no
tokeniser runs on the device). For each batch size of `--batches` in turn
(stopping at the first that does not fit) the median of `--steps` steps
after `--warmup`; MFU = pairs/s x training FLOPs per pair / `--peak-tflops`
(H200 dense bfloat16: 989).

    KERAS_BACKEND=jax python benchmarks/device_train.py --system keras-clip/jax
"""

import argparse
import json
import statistics
import time

from common import import_transformers
from train_step import training_flops_per_pair

VIT_B_32 = dict(
    image=224,
    patch=32,
    vision_width=768,
    vision_layers=12,
    context=77,
    text_width=512,
    text_layers=12,
    embed=512,
)


def keras_step(batch):
    """A function running one keras-clip training step of `batch` pairs."""
    import keras

    import keras_clip

    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras_clip.CLIP.from_architecture("ViT-B-32-quickgelu")
    model.compile()
    inputs = {
        "images": keras.random.normal((batch, 224, 224, 3)),
        "token_ids": keras.random.randint((batch, 77), 1, 49407, dtype="int32"),
    }

    def step():
        loss = model.train_on_batch(inputs, return_dict=True)["loss"]
        return float(loss)  # waits for the device

    return step


def transformers_step(batch):
    """The same for transformers' CLIPModel under bfloat16 autocast."""
    import torch

    transformers = import_transformers()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = transformers.CLIPModel(transformers.CLIPConfig(projection_dim=512)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    images = torch.randn(batch, 3, 224, 224, device=device)
    token_ids = torch.randint(1, 49407, (batch, 77), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=token_ids, pixel_values=images, return_loss=True).loss
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def is_out_of_memory(error):
    text = f"{type(error).__name__} {error}".lower()
    return "out of memory" in text or "resource_exhausted" in text or "oom" in text


def measure(system, batch, steps, warmup):
    """Median seconds per step, or None where `batch` does not fit."""
    try:
        step = transformers_step(batch) if system == "transformers" else keras_step(batch)
        times = []
        for _ in range(warmup + steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - only out-of-memory is expected
        if is_out_of_memory(error):
            return None
        raise
    return statistics.median(times[warmup:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    flops = training_flops_per_pair({**VIT_B_32, "batch": max(args.batches)})
    report = {"system": args.system, "flops_per_pair": flops, "by_batch": {}}
    for batch in args.batches:
        seconds = measure(args.system, batch, args.steps, args.warmup)
        if seconds is None:
            report["by_batch"][batch] = "out of memory"
            break
        pairs = batch / seconds
        report["by_batch"][batch] = {
            "pairs_per_second": round(pairs, 1),
            "mfu": round(pairs * flops / (args.peak_tflops * 1e12), 4),
        }
        report["largest_batch"] = batch
    print(json.dumps(report))


if __name__ == "__main__":
    main()
