"""XLA's memory analysis of one training step, data parallel against fully
sharded (FSDP), on simulated devices; one JSON line.

    python benchmarks/fsdp_memory.py --architecture ViT-bigG-14 --devices 8 64

Nothing is allocated: the model and its AdamW state are built in a
`keras.StatelessScope` (variables with shapes and no values), and one step
(`model.train_step`, the function `fit` compiles) is lowered with abstract
inputs carrying each variable's sharding, then compiled for N simulated CPU
devices (`keras_clip.models.sharding.train_step_memory`). Per device, in
MiB: "argument" (weights, optimizer state, metrics and the batch slice),
"temp" (activations and scratch) and "output". The dtype policy is
`--dtype-policy` (default "bfloat16": bf16 weights and moments;
"mixed_bfloat16" keeps float32 weights). Each (devices, mode) runs
in a process of its own (the device count is fixed at JAX's start).
"""

import argparse
import json
import math
import os
import sys
import time

from common import host
from common import spawn


def child(options):
    devices = int(options.devices[0])
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    os.environ["KERAS_BACKEND"] = "jax"
    import keras

    from keras_clip.models import FullyShardedDataParallel

    keras.config.set_dtype_policy(options.dtype_policy)
    if options.child == "fsdp":
        distribution = FullyShardedDataParallel()
    else:
        distribution = keras.distribution.DataParallel()
    keras.distribution.set_distribution(distribution)
    optimizer = keras.optimizers.AdamW(1e-4)  # its step counter has a value: outside
    # Everything happens inside the scope: leaving it would give every
    # deferred variable its value (a whole copy per simulated device for
    # data parallelism), so the child prints and exits from within.
    with keras.StatelessScope():
        model = _build(options.architecture)
        model.compile(optimizer=optimizer)
        optimizer.build(model.trainable_variables)
        print(json.dumps(_compiled_memory(model, distribution, options)), flush=True)
        os._exit(0)


# open_clip's SigLIP configs name a timm image tower; its shape, as
# Hugging Face's SiglipConfig writes it (timm vit_so400m_patch14_siglip_224).
SIGLIP_SHAPES = {
    "ViT-SO400M-14-SigLIP": {
        "vision_config": {
            "image_size": 224,
            "patch_size": 14,
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
        },
        "text_config": {
            "vocab_size": 32000,
            "max_position_embeddings": 16,
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
        },
    }
}


def _build(architecture):
    import keras_clip

    if architecture in SIGLIP_SHAPES:
        from keras_clip.pretrained.siglip import build_siglip

        return build_siglip(keras_clip.CLIP, SIGLIP_SHAPES[architecture])
    return keras_clip.CLIP.from_architecture(architecture)


def _input_shape(architecture):
    """(image size, context length)."""
    import keras_clip

    if architecture in SIGLIP_SHAPES:
        shape = SIGLIP_SHAPES[architecture]
        return shape["vision_config"]["image_size"], shape["text_config"]["max_position_embeddings"]
    config = keras_clip.models.architecture_config(architecture)
    return config["image_size"], config["context_length"]


def _compiled_memory(model, distribution, options):
    from keras_clip.models.sharding import train_step_memory

    size, context_length = _input_shape(options.architecture)
    batch = options.per_device_batch * int(options.devices[0])
    inputs = {
        "images": ((batch, size, size, 3), "float32"),
        "token_ids": ((batch, context_length), "int32"),
    }
    start = time.time()
    memory = train_step_memory(model, inputs, distribution)
    mib = lambda size: round(size / 2**20, 1)  # noqa: E731
    return {
        "argument_mib": mib(memory["argument"]),
        "temp_mib": mib(memory["temp"]),
        "output_mib": mib(memory["output"]),
        "parameters": sum(math.prod(v.shape) for v in model.weights),
        "compile_s": round(time.time() - start, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="ViT-B-32")
    parser.add_argument("--devices", nargs="+", type=int, default=[8])
    parser.add_argument("--per-device-batch", type=int, default=8)
    parser.add_argument("--dtype-policy", default="bfloat16")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        return child(options)
    report = {
        "benchmark": "fsdp_memory",
        "host": host(),
        "architecture": options.architecture,
        "dtype_policy": options.dtype_policy,
        "per_device_batch": options.per_device_batch,
    }
    for devices in options.devices:
        for mode in ("data_parallel", "fsdp"):
            arguments = ["--architecture", options.architecture, "--devices", str(devices)]
            arguments += ["--per-device-batch", str(options.per_device_batch)]
            arguments += ["--dtype-policy", options.dtype_policy]
            report[f"{mode}_{devices}"] = spawn(__file__, mode, "jax", arguments, options.timeout)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
