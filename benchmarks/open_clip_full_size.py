"""One open_clip architecture at full size, loaded by keras-clip and checked
against open_clip itself: one JSON line.

A one-off check (not a test: the large towers take minutes and many GB):
open_clip builds the named model with random weights, every tensor
perturbed; its embeddings of two random images and two captions are kept,
it is saved as an open_clip directory and freed; `CLIP.from_pretrained`
loads the directory on this process's Keras backend, and the line gives the
largest embedding and logit differences, the parameter count, the load
time and the process's peak memory.

    KERAS_BACKEND=torch python benchmarks/open_clip_full_size.py PE-Core-L-14-336
    KERAS_BACKEND=torch python benchmarks/open_clip_full_size.py nllb-clip-base-siglip --write-back

A Hugging Face text tower (`hf_model_name`) is built from its published
config (`keras_clip.models.hf_text.HF_TEXT_SHAPES`), offline.
"""

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time

from common import REPOSITORY  # noqa: E402
from common import host  # noqa: E402

sys.path.insert(0, REPOSITORY)


def reference_outputs(name, directory, seed=0):
    """open_clip's random, perturbed model of `name`, saved in `directory`;
    its outputs on a fixed batch."""
    import numpy as np
    import safetensors.torch
    import torch

    from tests.helpers import import_open_clip
    from tests.helpers import initialise_coca_decoder_projection

    open_clip = import_open_clip()
    config = open_clip.get_model_config(name)
    torch.manual_seed(seed)
    text_cfg = config["text_cfg"]
    if text_cfg.get("hf_model_name"):  # offline: the published shape, random weights
        local = offline_hf_config(text_cfg["hf_model_name"], os.path.join(directory, "hf_text"))
        text_cfg.update(hf_model_name=local, hf_tokenizer_name=local, hf_model_pretrained=False)
        towers = ("embed_dim", "vision_cfg", "text_cfg", "custom_text")
        options = {k: v for k, v in config.items() if k not in towers}
        model_class = open_clip.model.CustomTextCLIP
        if "multimodal_cfg" in config:  # coca_roberta-ViT-B-32
            model_class = open_clip.coca_model.CoCa
        model = model_class(
            embed_dim=config["embed_dim"], vision_cfg=config["vision_cfg"], text_cfg=text_cfg,
            **options,
        ).eval()  # fmt: skip
    else:
        model = open_clip.create_model(name).eval()
    if "multimodal_cfg" in config:
        initialise_coca_decoder_projection(model)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    size = config["vision_cfg"]["image_size"]
    context = config["text_cfg"].get("context_length", 77)
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(2, size, size, 3)).astype("float32")
    # Ids inside the text tower's vocabulary (SigLIP's: 32,000); CLIP's end id 49407.
    vocabulary = min(text_cfg.get("vocab_size", 49408), 49408)
    token_ids = rng.integers(1, vocabulary - 1, size=(2, context)).astype("int32")
    token_ids[:, 6], token_ids[:, 7:] = vocabulary - 1, 0
    with torch.no_grad():
        outputs = model(
            torch.from_numpy(images.transpose(0, 3, 1, 2)),
            torch.from_numpy(token_ids.astype("int64")),
        )
    if isinstance(outputs, dict):  # a CoCa
        outputs = [outputs[k] for k in ("image_features", "text_features", "logit_scale")]
    image, text, scale = outputs[:3]
    parameters = sum(p.numel() for p in model.parameters())
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        os.path.join(directory, "open_clip_model.safetensors"),
    )
    with open(os.path.join(directory, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": config}, f)
    del model
    gc.collect()
    return images, token_ids, image.numpy(), text.numpy(), float(scale), parameters


def offline_hf_config(name, directory):
    """A local Hugging Face directory holding `name`'s published config
    (keras-clip's `HF_TEXT_SHAPES`), for open_clip to build its text tower
    without a download."""
    import transformers

    from keras_clip.models.hf_text import HF_TEXT_SHAPES

    shape = dict(HF_TEXT_SHAPES[name])
    transformers.AutoConfig.for_model(shape.pop("model_type"), **shape).save_pretrained(directory)
    return directory


def writes_back_bit_for_bit(model, directory):
    """Whether `save_pretrained(format="open_clip")` writes open_clip's own
    tensors again: the same names, dtypes and bits."""
    import numpy as np
    import safetensors.numpy

    written = os.path.join(directory, "written")
    model.save_pretrained(written, format="open_clip")
    name = "open_clip_model.safetensors"
    expected = safetensors.numpy.load_file(os.path.join(directory, name))
    found = safetensors.numpy.load_file(os.path.join(written, name))
    return sorted(found) == sorted(expected) and all(
        found[k].dtype == v.dtype and np.array_equal(found[k], v) for k, v in expected.items()
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architecture", help="an open_clip name, e.g. PE-Core-L-14-336")
    parser.add_argument("--workdir", default=None, help="where the directory is written")
    parser.add_argument(
        "--write-back",
        action="store_true",
        help="also save_pretrained(format='open_clip') and compare every tensor's bits",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as directory:
        start = time.perf_counter()
        images, token_ids, image, text, scale, parameters = reference_outputs(
            args.architecture, directory
        )
        reference_s = time.perf_counter() - start
        import keras

        import keras_clip

        start = time.perf_counter()
        model = keras_clip.CLIP.from_pretrained(directory)
        load_s = time.perf_counter() - start
        found = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
        written_back = writes_back_bit_for_bit(model, directory) if args.write_back else None
    logits = scale * found["image_embeddings"] @ found["text_embeddings"].T
    print(
        json.dumps(
            {
                "architecture": args.architecture,
                "backend": keras.backend.backend(),
                "parameters": parameters,
                "keras_parameters": model.count_params(),
                "image_max_abs_diff": float(abs(found["image_embeddings"] - image).max()),
                "text_max_abs_diff": float(abs(found["text_embeddings"] - text).max()),
                "logit_max_abs_diff": float(abs(logits - scale * image @ text.T).max()),
                "written_back_bit_for_bit": written_back,
                "reference_s": round(reference_s, 1),
                "load_s": round(load_s, 1),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                "host": host(),
            }
        )
    )


if __name__ == "__main__":
    main()
