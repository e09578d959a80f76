"""What the benchmark scripts share: the host's description, child
processes (Keras fixes its backend at import, so each configuration runs
in a process of its own), medians over rounds, and transformers' import."""

import json
import os
import platform
import statistics
import subprocess
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CPU features that decide which kernels run (oneDNN's AMX / AVX-512
# bf16 and int8 paths, OpenVINO's int8 kernels, XLA:CPU's vector width).
KERNEL_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)


def host():
    """The CPU model, its core count and the kernel-relevant flags."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "flags": [flag for flag in KERNEL_FLAGS if flag in flags],
    }


def spawn(script, name, backend, options, timeout):
    """Runs `script --child name options...` on `backend`; the JSON object
    its last output line prints, or {"error": ...}."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, script, "--child", name, *map(str, options)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_or_error(rounds, key):
    """(median, per-round values) of `key` over rounds, or the first error."""
    values = [r[key] for r in rounds if key in r]
    if not values:
        return None, [r.get("error") for r in rounds]
    return statistics.median(values), values


def import_transformers():
    """transformers, after letting torchvision import beside the CPU torch
    (`tests.helpers.allow_torchvision_import`)."""
    sys.path.insert(0, REPOSITORY)
    from tests.helpers import allow_torchvision_import

    allow_torchvision_import()
    import transformers

    return transformers
