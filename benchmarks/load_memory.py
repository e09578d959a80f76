"""Peak memory of loading a checkpoint with a huge vocabulary: one JSON line.

MetaCLIP 2's text tower embeds XLM-V's 901,629 pieces (3.7 GB at width 1024
in float32). This writes a MetaClip2Model directory (random float32 weights,
no PyTorch model built: shapes from transformers' meta device) with that
text tower and a small image tower, then loads it in fresh processes:
keras-clip's `CLIP.from_pretrained` on this process's Keras backend, and
transformers' `MetaClip2Model.from_pretrained` as the peer. Each reports
its peak resident memory (VmHWM) minus the resident memory after its
imports, next to the checkpoint's size: the best a loader can do is about
one copy of the weights. transformers maps the file and reads a weight when
it is first used; its figure is taken after touching every weight.

    KERAS_BACKEND=torch python benchmarks/load_memory.py [--vocabulary 901629]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import REPOSITORY  # noqa: E402
from common import host  # noqa: E402

sys.path.insert(0, REPOSITORY)

LOADERS = {
    "keras_clip": "import keras_clip\n"
    "def load(path):\n"
    "    return keras_clip.CLIP.from_pretrained(path)\n",
    "transformers": "from tests.helpers import allow_torchvision_import\n"
    "allow_torchvision_import()\n"
    "import transformers\n"
    "def load(path):\n"
    "    model = transformers.MetaClip2Model.from_pretrained(path)\n"
    "    for parameter in model.parameters():  # page in what it maps lazily\n"
    "        parameter.data.sum()\n"
    "    return model\n",
}
MEASURE = """
import gc, json, sys, time
sys.path.insert(0, {repository!r})
{loader}
def status(key):  # kB; VmHWM is this process's own high-water mark (ru_maxrss
    # carries the parent's across exec)
    return int(dict(l.split(":", 1) for l in open("/proc/self/status"))[key].split()[0])
gc.collect()
base = status("VmRSS")
start = time.perf_counter()
model = load({path!r})
seconds = time.perf_counter() - start
# The high-water mark lags RSS that only grew: take the current RSS too.
peak = max(status("VmHWM"), status("VmRSS"))
print(json.dumps({{"peak_gb": round((peak - base) / 2**20, 2), "load_s": round(seconds, 1)}}))
"""


def write_checkpoint(directory, vocabulary, width, layers):
    """A MetaClip2Model directory of the given text tower, random weights."""
    import numpy as np
    import torch

    from keras_clip.pretrained import write_safetensors
    from tests.helpers import allow_torchvision_import

    allow_torchvision_import()
    import transformers

    config = transformers.MetaClip2Config(
        text_config=dict(
            vocab_size=vocabulary, hidden_size=width, intermediate_size=4 * width,
            num_hidden_layers=layers, num_attention_heads=width // 64,
            bos_token_id=0, pad_token_id=1, eos_token_id=2,
        ),
        vision_config=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=2,
                           num_attention_heads=4, image_size=64, patch_size=16),
        projection_dim=width,
    )  # fmt: skip
    with torch.device("meta"):
        shapes = {
            k: tuple(v.shape) for k, v in transformers.MetaClip2Model(config).state_dict().items()
        }
    rng = np.random.default_rng(0)
    tensors = {
        name: rng.standard_normal(shape, dtype="float32") * 0.02
        for name, shape in shapes.items()
        if "position_ids" not in name
    }
    size = sum(t.nbytes for t in tensors.values())
    write_safetensors(os.path.join(directory, "model.safetensors"), tensors, {"format": "pt"})
    del tensors
    config.save_pretrained(directory)
    return size


def measure(name, directory):
    script = MEASURE.format(repository=REPOSITORY, loader=LOADERS[name], path=directory)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabulary", type=int, default=901_629)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        size = write_checkpoint(directory, args.vocabulary, args.width, args.layers)
        result = {
            "benchmark": "load_memory",
            "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
            "vocabulary": args.vocabulary,
            "checkpoint_gb": round(size / 2**30, 2),
        }
        for name in LOADERS:
            result[name] = measure(name, directory)
    result["host"] = host()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
