"""open_clip's MobileCLIP FastViT checkpoints: tensors in and out.

The image tower is `visual.trunk.*`, timm's FastViT in its training
(multi-branch) form: MobileOne blocks (`conv_kxk.N`, `conv_scale`,
`identity`, `se`), large-kernel convolutions (`large_conv`, `small_conv`),
RepMixers, conditional position encodings and `head.fc`; the text tower is
`text.*`. Only the training form has an open_clip layout: a tower folded
with `reparameterized()` is for serving.

Example:

```python
model = keras_clip.CLIP.from_pretrained("MobileCLIP2-S0/")  # open_clip directory
model.save_pretrained("tuned/", format="open_clip")
```
"""

from keras_clip.encoders.fastvit import FastViT
from keras_clip.models.preprocessing import OPENAI_MEAN
from keras_clip.models.preprocessing import OPENAI_STD
from keras_clip.models.timm_fastvit import fastvit_variant
from keras_clip.models.timm_fastvit import from_open_clip_fastvit_config
from keras_clip.pretrained.configs import timm_model_cfg
from keras_clip.pretrained.layouts import openai_text_entries
from keras_clip.pretrained.weight_map import Entry
from keras_clip.pretrained.weight_map import batch_norm
from keras_clip.pretrained.weight_map import conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import reshaped
from keras_clip.pretrained.weight_map import tensor

TRUNK = "visual.trunk."


def is_fastvit_model(model):
    return isinstance(getattr(model, "image_encoder", None), FastViT)


def fastvit_preprocessing(timm_model_name):
    """(mean, std, resize mode, interpolation) open_clip pairs with an MCi
    variant: MobileCLIP's mean 0 and std 1, OpenAI's for MCi3 and MCi4."""
    if fastvit_variant(timm_model_name) in ("mci3", "mci4"):
        return OPENAI_MEAN, OPENAI_STD, "shortest", "bilinear"
    return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "shortest", "bilinear"


def fastvit_shape(config, tensors):
    """Shape fields of a FastViT config, the stages read off the tensors
    (so shrunken towers load too) when the checkpoint has them."""
    if f"{TRUNK}head.fc.weight" not in tensors:
        return from_open_clip_fastvit_config(config)
    depths, dims, ratios, se_widths = [], [], [], {}
    stage = 0
    while f"{TRUNK}stages.{stage}.blocks.0.mlp.fc1.weight" in tensors:
        prefix = f"{TRUNK}stages.{stage}."
        depths.append(
            len(
                {
                    k[len(prefix) :].split(".")[1]
                    for k in tensors
                    if k.startswith(prefix + "blocks.")
                }
            )
        )
        hidden, dim = tensors[f"{prefix}blocks.0.mlp.fc1.weight"].shape[:2]
        dims.append(int(dim))
        ratios.append(hidden / dim)
        se = f"{prefix}downsample.proj.0.se.fc1.weight"
        if se in tensors:
            se_widths[f"stage_{stage}"] = int(tensors[se].shape[0])
        stage += 1
    se_widths["final"] = int(tensors[f"{TRUNK}final_conv.se.fc1.weight"].shape[0])
    sizes = dict(depths=depths, dims=dims, mlp_ratios=ratios, se_widths=se_widths)
    return from_open_clip_fastvit_config(config, sizes)


def _pointwise(layer, prefix):
    """A Keras Dense from a 1 x 1 PyTorch convolution (out, in, 1, 1)."""
    units, inputs = layer.kernel.shape[1], layer.kernel.shape[0]
    return [
        Entry(
            layer.kernel,
            (f"{prefix}.weight",),
            lambda a: a.reshape(units, inputs).T,
            lambda a: (a.T.reshape(units, inputs, 1, 1),),
        ),
        tensor(layer.bias, f"{prefix}.bias"),
    ]


def _reparam(layer, prefix, names):
    """A `ReparamConv2D`'s branches under timm's names (one per branch)."""
    entries = []
    for (_, convolution), norm, name in zip(layer.branches, layer.norms, names):
        entries += conv(convolution, f"{prefix}.{name}.conv.weight", layer.depthwise)
        entries += batch_norm(norm, f"{prefix}.{name}.bn")
    if layer.identity_norm is not None:
        entries += batch_norm(layer.identity_norm, f"{prefix}.identity")
    if layer.se is not None:
        entries += _pointwise(layer.se.reduce, f"{prefix}.se.fc1")
        entries += _pointwise(layer.se.expand, f"{prefix}.se.fc2")
    return entries


def _mobileone(layer, prefix):
    names = ["conv_kxk.0", "conv_scale"][: len(layer.branch_kernels)]
    return _reparam(layer, prefix, names)


def _gamma(variable, name):
    return reshaped(variable, name, (variable.shape[0], 1, 1))


def _block(block, prefix):
    mlp = block.mlp
    entries = _reparam(mlp.convolution, f"{prefix}.mlp", ["conv"])
    entries += _pointwise(mlp.fc1, f"{prefix}.mlp.fc1") + _pointwise(mlp.fc2, f"{prefix}.mlp.fc2")
    if block.mixer == "repmixer":
        mixer = block.token_mixer
        entries += _reparam(mixer.norm, f"{prefix}.token_mixer.norm", [])
        entries += _mobileone(mixer.mixer, f"{prefix}.token_mixer.mixer")
        entries.append(_gamma(mixer.gamma, f"{prefix}.token_mixer.layer_scale.gamma"))
        return entries + [_gamma(block.gamma_mlp, f"{prefix}.layer_scale.gamma")]
    norm = batch_norm if block.norm == "batch" else layer_norm
    entries += norm(block.norm_layer, f"{prefix}.norm")
    entries += dense(block.qkv, f"{prefix}.token_mixer.qkv.weight")
    entries += dense(block.proj, f"{prefix}.token_mixer.proj")
    return entries + [
        _gamma(block.gamma_attention, f"{prefix}.layer_scale_1.gamma"),
        _gamma(block.gamma_mlp, f"{prefix}.layer_scale_2.gamma"),
    ]


def fastvit_weight_map(model):
    """Entries for open_clip's names of a FastViT `CustomTextCLIP`."""
    vision = model.image_encoder
    if vision.folded:
        raise ValueError(
            "A folded (reparameterized) FastViT has no open_clip layout: save the "
            "training-form model, and fold it for serving."
        )
    entries = []
    for index, layer in enumerate(vision.stem):
        entries += _mobileone(layer, f"{TRUNK}stem.{index}")
    for i, blocks in enumerate(vision.stages):
        stage = f"{TRUNK}stages.{i}"
        downsample = vision.downsample_layers.get(str(i))
        if downsample:
            entries += _reparam(
                downsample[0], f"{stage}.downsample.proj.0", ["large_conv", "small_conv"]
            )
            entries += _mobileone(downsample[1], f"{stage}.downsample.proj.1")
        if str(i) in vision.position_layers:
            convolution = vision.position_layers[str(i)].convolution
            entries += conv(convolution, f"{stage}.pos_emb.pos_enc.weight", depthwise=True)
            entries.append(tensor(convolution.bias, f"{stage}.pos_emb.pos_enc.bias"))
        for j, block in enumerate(blocks):
            entries += _block(block, f"{stage}.blocks.{j}")
    entries += _mobileone(vision.final_conv, f"{TRUNK}final_conv")
    entries += dense(vision.head, f"{TRUNK}head.fc")
    return entries + openai_text_entries(model, prefix="text.")


def to_open_clip_fastvit_config(model):
    """open_clip's model config of a FastViT keras-clip `CLIP`."""
    return timm_model_cfg(model, "avg", None)
