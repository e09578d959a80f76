"""Backend-neutral helpers for the tests: gradients and tiny data."""

import sys

import keras
import numpy as np


def gradients(fn, *arrays):
    """Gradients of the scalar `fn(*tensors)` w.r.t. each float32 input
    (zeros for an input the value does not depend on)."""
    backend = keras.backend.backend()
    arrays = [np.asarray(a, "float32") for a in arrays]
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(a) for a in arrays]
        with tf.GradientTape() as tape:
            value = fn(*variables)
        grads = tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [g.numpy() for g in grads]
    if backend == "jax":
        import jax

        grads = jax.grad(lambda *a: fn(*a), argnums=tuple(range(len(arrays))))(*arrays)
        return [np.asarray(g) for g in grads]
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*tensors).backward()
    return [np.zeros_like(a) if t.grad is None else t.grad.numpy() for a, t in zip(arrays, tensors)]


def finite_differences(fn, *arrays, eps=1e-6):
    """Central differences of a float64 NumPy function, per input."""
    arrays = [np.asarray(a, "float64") for a in arrays]
    result = []
    for index, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += eps
            up = fn(*shifted)
            shifted[index][position] -= 2 * eps
            down = fn(*shifted)
            grad[position] = (up - down) / (2 * eps)
        result.append(grad)
    return result


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def tiny_batch(model_config=None, batch=8, seed=0, image_size=32, context=16, vocabulary=100):
    """A fixed batch of float images and token ids ending in the largest id."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, image_size, image_size, 3)).astype("float32")
    token_ids = rng.integers(2, vocabulary - 1, size=(batch, context)).astype("int32")
    lengths = rng.integers(3, context, size=batch)
    for row, length in enumerate(lengths):
        token_ids[row, length] = vocabulary - 1
        token_ids[row, length + 1 :] = 0
    return {"images": images, "token_ids": token_ids}


def allow_torchvision_import():
    """Lets `import torchvision` succeed where its C ops cannot load.

    The torchvision wheel beside the CPU torch (a test extra, for open_clip)
    cannot load its compiled ops, yet its import registers fake kernels for
    two of them, and transformers imports torchvision when it is installed.
    Declaring those two op schemas first lets the import through; nothing
    here uses torchvision's compiled ops. Does nothing where they load.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("torchvision")
    if spec is None or "torchvision" in sys.modules or _LIBRARIES:
        return
    import torch

    compiled = os.path.join(os.path.dirname(spec.origin), "_C.so")
    try:
        torch.ops.load_library(compiled)
        return
    except (OSError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(library)


def import_open_clip():
    """open_clip (a test extra), or skip."""
    import pytest

    allow_torchvision_import()
    return pytest.importorskip("open_clip")


def random_open_clip_model(config, path, seed=0, scale=0.05, batch_norms=False):
    """A random open_clip model of the model config `config` (`CLIP`, or
    `CustomTextCLIP` where `custom_text`), every tensor perturbed so that a
    swapped tensor shows (noise of standard deviation `scale`; with
    `batch_norms`, the BatchNorm statistics too), saved as safetensors at
    `path`."""
    open_clip = import_open_clip()
    import safetensors.torch
    import torch

    torch.manual_seed(seed)
    towers = ("vision_cfg", "text_cfg", "embed_dim", "custom_text", "multimodal_cfg")
    options = {k: v for k, v in config.items() if k not in towers}
    if config.get("multimodal_cfg"):  # CoCa: towers and its caption decoder
        options["multimodal_cfg"] = config["multimodal_cfg"]
        model_class = open_clip.coca_model.CoCa
    elif config.get("custom_text"):
        model_class = open_clip.model.CustomTextCLIP
    else:
        model_class = open_clip.model.CLIP
    model = model_class(
        embed_dim=config["embed_dim"],
        vision_cfg=config["vision_cfg"],
        text_cfg=config["text_cfg"],
        **options,
    )
    with torch.no_grad():
        if config.get("multimodal_cfg"):
            initialise_coca_decoder_projection(model)
        for parameter in model.parameters():
            parameter.add_(scale * torch.randn_like(parameter))
    model.eval()
    if batch_norms:
        randomise_batch_norms(model, torch.Generator().manual_seed(seed))
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(path)
    )
    return model


def initialise_coca_decoder_projection(model):
    """open_clip 3.3 leaves a CoCa decoder's projection as `torch.empty`
    (`MultimodalTransformer.init_parameters` is never called): values up to
    1e31 were seen. Normal, std width ** -0.5, as open_clip means it."""
    import torch

    projection = model.text_decoder.text_projection
    torch.nn.init.normal_(projection, std=projection.shape[0] ** -0.5)


_LIBRARIES = []  # keeps the declared torchvision schemas alive


def randomise_batch_norms(module, generator):
    """Moves every BatchNorm of a torch module off its identity
    initialisation, so that a misplaced statistic shows (eval mode)."""
    import torch

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                size = layer.num_features
                layer.weight.copy_(1 + 0.2 * torch.randn(size, generator=generator))
                layer.bias.copy_(0.2 * torch.randn(size, generator=generator))
                layer.running_mean.copy_(0.2 * torch.randn(size, generator=generator))
                layer.running_var.copy_(1 + 0.5 * torch.rand(size, generator=generator))
    return module.eval()


def assert_serves_the_embeddings(path, model, token_ids, images):
    """The SavedModel at `path` (export_saved_model's) gives `model`'s text
    and image embeddings of `token_ids` and normalised `images`, to 1e-5."""
    import tensorflow as tf

    served = tf.saved_model.load(str(path))
    text = served.signatures["encode_token_ids"](token_ids=tf.constant(token_ids))
    image = served.signatures["encode_normalized_images"](images=tf.constant(images))
    expected = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    for found, key in ((text, "text_embeddings"), (image, "image_embeddings")):
        found = next(iter(found.values())).numpy()
        np.testing.assert_allclose(found, expected[key], atol=1e-5, rtol=0)
