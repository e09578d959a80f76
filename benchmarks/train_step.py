"""Training throughput of keras-clip against a plain PyTorch CLIP, one JSON line.

Shape (fixed by the core issue): ViT 64 px, patch 8, width 192, 4 layers,
3 heads; text context 32, width 192, 4 layers, 3 heads, vocabulary 1000;
embed 128; batch 64 ("bench-vit"). Each configuration runs in its own
process (Keras fixes its backend at import): TensorFlow, JAX and PyTorch,
jit on and off, float32 and mixed bfloat16. Two PyTorch peers of the same
shapes, both trained with AdamW: a CLIP written with torch.nn (pre-LN encoder
layers) and transformers' `CLIPModel` built from a config (no download), in
float32 and under torch's bfloat16 autocast; speedups are given against the
first two. The script also measures the float32 matrix-multiply rate the machine sustains
(the best of NumPy, PyTorch, TensorFlow and JAX on 2048^3) and reports each configuration's
fraction of it, from the FLOPs of one training pair (3x the forward
matmul FLOPs). Each configuration's time is the median of `--steps` steps
after `--warmup`, in each of `--repeats` rounds (every round runs every
configuration once, so drift in the machine's speed hits all of them alike);
the report gives the median over rounds and each round's value. The
"default" configurations compile as the README does (`model.compile()`, no
`jit_compile`), and the host's CPU flags are part of the report.

    python benchmarks/train_step.py [--steps 10] [--warmup 3] [--repeats 3]
        [--only tensorflow:default:float32 ...]
"""

import argparse
import json
import statistics
import time

from common import host
from common import import_transformers
from common import spawn

SHAPE = dict(
    image=64,
    patch=8,
    vision_width=192,
    vision_layers=4,
    vision_heads=3,
    context=32,
    text_width=192,
    text_layers=4,
    text_heads=3,
    vocabulary=1000,
    embed=128,
    batch=64,
)


def training_flops_per_pair(s=SHAPE):
    """3x the forward multiply-add FLOPs (x2) of one image-caption pair."""

    def transformer(tokens, width, layers):
        per_layer = 12 * tokens * width**2 + 2 * tokens**2 * width
        return 2 * layers * per_layer

    patches = (s["image"] // s["patch"]) ** 2
    vision = 2 * patches * s["patch"] ** 2 * 3 * s["vision_width"]
    vision += transformer(patches + 1, s["vision_width"], s["vision_layers"])
    text = transformer(s["context"], s["text_width"], s["text_layers"])
    heads = 2 * s["embed"] * (s["vision_width"] + s["text_width"])
    logits = 2 * 2 * s["batch"] * s["embed"]  # the pair's row and column
    return 3 * (vision + text + heads + logits)


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(size=2048, repeats=5):
    """Sustained float32 GFLOP/s of NumPy, PyTorch, TensorFlow and JAX."""
    import numpy as np

    a = np.random.rand(size, size).astype("float32")
    flop = 2 * size**3
    results = {"numpy": flop / _median_seconds(lambda: a @ a, repeats) / 1e9}
    try:
        import torch

        t = torch.from_numpy(a)
        results["torch"] = flop / _median_seconds(lambda: t @ t, repeats) / 1e9
    except ImportError:
        pass
    import tensorflow as tf

    x = tf.constant(a)
    matmul = tf.function(lambda: tf.matmul(x, x))
    matmul().numpy()
    results["tensorflow"] = flop / _median_seconds(lambda: matmul().numpy(), repeats) / 1e9
    try:
        import jax

        y = jax.numpy.asarray(a)
        square = jax.jit(lambda m: m @ m)
        square(y).block_until_ready()
        results["jax"] = (
            flop / _median_seconds(lambda: square(y).block_until_ready(), repeats) / 1e9
        )
    except ImportError:
        pass
    return results


def run_keras(backend, jit, policy, steps, warmup):
    """Child process body: median seconds per keras-clip training step."""
    import keras
    import numpy as np

    import keras_clip

    keras.config.set_dtype_policy(policy)
    s = SHAPE
    model = keras_clip.CLIP.from_architecture(
        "bench-vit", vocabulary_size=s["vocabulary"], context_length=s["context"]
    )
    options = {} if jit == "default" else {"jit_compile": jit == "jit"}
    model.compile(optimizer=keras_clip.models.default_optimizer(1e-4), **options)
    rng = np.random.default_rng(0)
    batch = {
        "images": rng.normal(size=(s["batch"], s["image"], s["image"], 3)).astype("float32"),
        "token_ids": rng.integers(1, s["vocabulary"], (s["batch"], s["context"])).astype("int32"),
    }
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        loss = model.train_on_batch(batch, return_dict=True)["loss"]
        times.append(time.perf_counter() - start)
    assert np.isfinite(loss)
    return statistics.median(times[warmup:])


def run_torch_peer(steps, warmup, compiled=False):
    """Child process body: median seconds per step of a torch.nn CLIP."""
    import torch
    from torch import nn

    s = SHAPE

    def encoder(width, layers, heads):
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            4 * width,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    class TorchCLIP(nn.Module):
        def __init__(self):
            super().__init__()
            grid = s["image"] // s["patch"]
            self.patch = nn.Conv2d(3, s["vision_width"], s["patch"], s["patch"], bias=False)
            self.cls = nn.Parameter(torch.zeros(1, 1, s["vision_width"]))
            self.vpos = nn.Parameter(torch.zeros(1, grid * grid + 1, s["vision_width"]))
            self.vln = nn.LayerNorm(s["vision_width"])
            self.vision = encoder(s["vision_width"], s["vision_layers"], s["vision_heads"])
            self.vpost = nn.LayerNorm(s["vision_width"])
            self.token = nn.Embedding(s["vocabulary"], s["text_width"])
            self.tpos = nn.Parameter(torch.zeros(1, s["context"], s["text_width"]))
            self.text = encoder(s["text_width"], s["text_layers"], s["text_heads"])
            self.tln = nn.LayerNorm(s["text_width"])
            self.vproj = nn.Linear(s["vision_width"], s["embed"], bias=False)
            self.tproj = nn.Linear(s["text_width"], s["embed"], bias=False)
            self.scale = nn.Parameter(torch.tensor(2.659))
            self.register_buffer(
                "mask", nn.Transformer.generate_square_subsequent_mask(s["context"])
            )

        def forward(self, images, tokens):
            x = self.patch(images).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.vpos
            v = self.vpost(self.vision(self.vln(x))[:, 0])
            t = self.text(self.token(tokens) + self.tpos, mask=self.mask, is_causal=True)
            t = self.tln(t)[torch.arange(len(t)), tokens.argmax(-1)]
            v = nn.functional.normalize(self.vproj(v), dim=-1)
            t = nn.functional.normalize(self.tproj(t), dim=-1)
            logits = self.scale.clamp(max=4.6052).exp() * v @ t.T
            labels = torch.arange(len(logits))
            return (
                nn.functional.cross_entropy(logits, labels)
                + nn.functional.cross_entropy(logits.T, labels)
            ) / 2

    torch.manual_seed(0)
    model = TorchCLIP()
    return _median_torch_step(model, torch.compile(model) if compiled else model, steps, warmup)


def _median_torch_step(model, loss_of, steps, warmup):
    """Median seconds of an AdamW step on `loss_of(images, tokens)`."""
    import torch

    s = SHAPE
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    images = torch.randn(s["batch"], 3, s["image"], s["image"])
    tokens = torch.randint(1, s["vocabulary"], (s["batch"], s["context"]))
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_of(images, tokens).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def run_transformers_peer(steps, warmup, bfloat16=False):
    """Child process body: median seconds per step of transformers'
    CLIPModel, in float32 or under torch's bfloat16 autocast."""
    import torch

    transformers = import_transformers()
    CLIPConfig, CLIPModel = transformers.CLIPConfig, transformers.CLIPModel

    s = SHAPE

    def tower(width, layers, heads, **extra):
        return dict(
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            **extra,
        )

    config = CLIPConfig(
        # eos_token_id=2 selects CLIPModel's argmax pooling (as ours).
        text_config=tower(
            s["text_width"],
            s["text_layers"],
            s["text_heads"],
            vocab_size=s["vocabulary"],
            max_position_embeddings=s["context"],
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        ),
        vision_config=tower(
            s["vision_width"],
            s["vision_layers"],
            s["vision_heads"],
            image_size=s["image"],
            patch_size=s["patch"],
        ),
        projection_dim=s["embed"],
    )
    torch.manual_seed(0)
    model = CLIPModel(config)

    def loss_of(images, tokens):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            return model(input_ids=tokens, pixel_values=images, return_loss=True).loss

    return _median_torch_step(model, loss_of, steps, warmup)


def child(args):
    if args.child == "torch-peer":
        seconds = run_torch_peer(args.steps, args.warmup)
    elif args.child.startswith("transformers"):
        bfloat16 = args.child == "transformers-bf16-peer"
        seconds = run_transformers_peer(args.steps, args.warmup, bfloat16)
    else:
        backend, jit, policy = args.child.split(":")
        seconds = run_keras(backend, jit, policy, args.steps, args.warmup)
    print(json.dumps({"seconds": seconds}))


CONFIGS = [
    ("tensorflow", "default", "float32"),
    ("jax", "default", "float32"),
    ("torch", "default", "float32"),
    ("tensorflow", "jit", "float32"),
    ("tensorflow", "nojit", "float32"),
    ("jax", "jit", "float32"),
    ("jax", "nojit", "float32"),
    ("torch", "nojit", "float32"),
    ("torch", "jit", "float32"),
    ("tensorflow", "default", "mixed_bfloat16"),
    ("torch", "default", "mixed_bfloat16"),
    ("tensorflow", "jit", "mixed_bfloat16"),
    ("jax", "jit", "mixed_bfloat16"),
]


def run_rounds(args):
    """Every configuration once per round; {name: [seconds or error, ...]}."""
    peers = ["torch-peer", "transformers-peer", "transformers-bf16-peer"]
    names = [(peer, "torch") for peer in peers] + [
        (f"{backend}:{jit}:{policy}", backend) for backend, jit, policy in CONFIGS
    ]
    if args.only:
        names = [(n, b) for n, b in names if n in args.only or n.endswith("peer")]
    outcomes = {name: [] for name, _ in names}
    rates = {}
    for _ in range(args.repeats):
        for library, rate in matmul_rate().items():
            rates.setdefault(library, []).append(rate)
        for name, backend in names:
            options = ["--steps", args.steps, "--warmup", args.warmup]
            outcomes[name].append(spawn(__file__, name, backend, options, args.timeout))
    return outcomes, {k: statistics.median(v) for k, v in rates.items()}


def summarise(rounds, flops, peak, peer_rate=None, transformers_rate=None):
    """The median over rounds as pairs/s, fraction of peak and speedup."""
    seconds = [r["seconds"] for r in rounds if "seconds" in r]
    if not seconds:
        return rounds[0]
    median = statistics.median(seconds)
    pairs = SHAPE["batch"] / median
    summary = {
        "seconds": median,
        "pairs_per_second": round(pairs, 1),
        "pairs_per_second_by_round": [round(SHAPE["batch"] / t, 1) for t in seconds],
        "fraction_of_matmul_peak": round(pairs * flops / peak, 3),
    }
    if peer_rate:
        summary["speedup_vs_torch_peer"] = round(pairs / peer_rate, 2)
    if transformers_rate:
        summary["speedup_vs_transformers"] = round(pairs / transformers_rate, 2)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument(
        "--only", nargs="+", help="configurations to run (backend:jit:policy), beside the peers"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    flops = training_flops_per_pair()
    outcomes, rates = run_rounds(args)
    peak = max(rates.values()) * 1e9
    peer = summarise(outcomes.pop("torch-peer"), flops, peak)
    peer_rate = SHAPE["batch"] / peer["seconds"] if "seconds" in peer else None
    transformers = summarise(outcomes.pop("transformers-peer"), flops, peak, peer_rate)
    transformers_rate = (
        SHAPE["batch"] / transformers["seconds"] if "seconds" in transformers else None
    )
    report = {
        "host": host(),
        "shape": SHAPE,
        "flops_per_pair": flops,
        "rounds": args.repeats,
        "matmul_gflops": {k: round(v, 1) for k, v in rates.items()},
        "torch_peer": peer,
        "transformers_peer": transformers,
        "transformers_bf16_peer": summarise(
            outcomes.pop("transformers-bf16-peer"), flops, peak, peer_rate, transformers_rate
        ),
    }
    report["keras_clip"] = {
        name.replace(":", "/"): summarise(rounds, flops, peak, peer_rate, transformers_rate)
        for name, rounds in outcomes.items()
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
