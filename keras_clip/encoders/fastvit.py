"""FastViT image towers: MobileCLIP's and MobileCLIP 2's MCi encoders."""

import keras
from keras import ops

from keras_clip.layers.fastvit_blocks import ConditionalPositionEncoding
from keras_clip.layers.fastvit_blocks import FastViTBlock
from keras_clip.layers.reparam_conv import ReparamConv2D
from keras_clip.utils.checks import check_images
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config


def make_divisible(value, divisor):
    """timm's rounding of a squeeze-excite width (to a multiple of divisor)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


@keras.saving.register_keras_serializable(package="keras_clip")
class FastViT(keras.Model):
    """timm's FastViT (MobileCLIP's MCi towers), average-pooled and projected.

    A stem of three MobileOne blocks (stride 4); stages of RepMixer or
    attention blocks, each stage entered, where it downsamples, by a 7 x 7
    depthwise large-kernel convolution (stride 2, optional squeeze-excite)
    and a 1 x 1 MobileOne block, with optional conditional position
    encoding; a final depthwise MobileOne block doubling the channels, with
    squeeze-excite; the mean over space and a biased Dense to `output_dim`.

    It trains in the multi-branch form and serves in the folded one:
    `reparameterized()` returns the same tower with every re-parameterisable
    part folded into single convolutions (`folded=True`), computing the same
    function (MobileOne / FastViT's structural re-parameterisation).

    Args:
        image_size: int. Side of the square input images.
        depths: blocks per stage.
        dims: channels per stage.
        mlp_ratios: MLP width ratio per stage.
        token_mixers: "repmixer" or "attention" per stage.
        downsamples: whether each stage downsamples (also where the
            channels change).
        se_downsamples: squeeze-excite in each stage's downsampling.
        position_encodings: conditional position encoding per stage.
        output_dim: int. Width of the head (the joint space).
        attention_norm: "batch" (MCi0-2) or "layer" (MCi3-4).
        stem_scale_branch: bool. 1 x 1 branches in the stem's 3 x 3 blocks.
        se_widths: None, or the squeeze-excite bottleneck widths: a dict
            "stage_{i}" / "final" -> int (timm's rounding by default).
        folded: bool. Build the folded (inference) form.
        timm_model_name: str or None, written back by `save_pretrained`.

    Call arguments:
        images: float (batch, image_size, image_size, 3), normalised.

    Returns:
        float (batch, output_dim).

    Example:

    ```python
    encoder = FastViT(
        64, depths=(1, 1, 1, 1), dims=(16, 32, 64, 128), mlp_ratios=(3,) * 4,
        token_mixers=("repmixer",) * 3 + ("attention",), downsamples=(False, True, True, True),
        se_downsamples=(False, False, True, True), position_encodings=(False,) * 3 + (True,),
        output_dim=32,
    )
    encoder(np.zeros((2, 64, 64, 3), "float32")).shape  # (2, 32)
    folded = encoder.reparameterized()
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "image_size",
        "depths",
        "dims",
        "mlp_ratios",
        "token_mixers",
        "downsamples",
        "se_downsamples",
        "position_encodings",
        "output_dim",
        "attention_norm",
        "stem_scale_branch",
        "se_widths",
        "folded",
        "timm_model_name",
    )

    def __init__(
        self,
        image_size,
        depths,
        dims,
        mlp_ratios,
        token_mixers,
        downsamples,
        se_downsamples,
        position_encodings,
        output_dim,
        attention_norm="batch",
        stem_scale_branch=True,
        se_widths=None,
        folded=False,
        timm_model_name=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        depths, dims, mlp_ratios = list(depths), list(dims), list(mlp_ratios)
        token_mixers, downsamples = list(token_mixers), list(downsamples)
        se_downsamples, position_encodings = list(se_downsamples), list(position_encodings)
        stages = len(depths)
        for name, value in (
            ("dims", dims), ("mlp_ratios", mlp_ratios), ("token_mixers", token_mixers),
            ("downsamples", downsamples), ("se_downsamples", se_downsamples),
            ("position_encodings", position_encodings),
        ):  # fmt: skip
            if len(value) != stages:
                raise ValueError(f"{name} has {len(value)} entries for {stages} stages.")
        unknown = set(token_mixers) - {"repmixer", "attention"}
        if unknown:
            raise ValueError(f"Unknown token mixers {sorted(unknown)}.")
        se_widths = dict(se_widths or {})
        keep_config(self, locals())

        # === Layers ===
        policy = self.dtype_policy
        branches = (3, 1) if stem_scale_branch else (3,)
        self.stem = [
            ReparamConv2D(dims[0], 3, 2, branch_kernels=branches, folded=folded, dtype=policy,
                          name="stem_0"),
            ReparamConv2D(dims[0], 3, 2, depthwise=True, branch_kernels=branches, folded=folded,
                          dtype=policy, name="stem_1"),
            ReparamConv2D(dims[0], 1, identity=True, folded=folded, dtype=policy, name="stem_2"),
        ]  # fmt: skip
        self.downsample_layers, self.position_layers, self.stages = {}, {}, []
        previous = dims[0]
        for i in range(stages):
            if downsamples[i] or previous != dims[i]:
                se = se_widths.get(f"stage_{i}", make_divisible(dims[i] * 0.25, 8))
                self.downsample_layers[str(i)] = [
                    ReparamConv2D(dims[i], 7, 2, depthwise=True, branch_kernels=(7, 3),
                                  se_channels=se if se_downsamples[i] else None, folded=folded,
                                  dtype=policy, name=f"downsample_{i}_0"),
                    ReparamConv2D(dims[i], 1, identity=True, folded=folded, dtype=policy,
                                  name=f"downsample_{i}_1"),
                ]  # fmt: skip
            if position_encodings[i]:
                self.position_layers[str(i)] = ConditionalPositionEncoding(
                    folded=folded, dtype=policy, name=f"pos_emb_{i}"
                )
            self.stages.append(
                [
                    FastViTBlock(
                        token_mixers[i],
                        int(dims[i] * mlp_ratios[i]),
                        attention_norm,
                        folded=folded,
                        dtype=policy,
                        name=f"stage_{i}_{j}",
                    )
                    for j in range(depths[i])
                ]  # fmt: skip
            )
            previous = dims[i]
        final = 2 * dims[-1]
        self.final_conv = ReparamConv2D(
            final, 3, depthwise=True, branch_kernels=(3, 1),
            se_channels=se_widths.get("final", make_divisible(final / 16, 1)), folded=folded,
            dtype=policy, name="final_conv",
        )  # fmt: skip
        self.head = keras.layers.Dense(output_dim, dtype=policy, name="head")

    def build(self, input_shape):
        check_images(keras.KerasTensor(input_shape), self.image_size)
        side = self.image_size
        shape = tuple(input_shape)
        for layer in self.stem:
            layer.build(shape)
            side = -(-side // layer.strides)
            shape = (None, side, side, layer.filters)
        for i, blocks in enumerate(self.stages):
            for layer in self.downsample_layers.get(str(i), []):
                layer.build(shape)
                side = -(-side // layer.strides)
                shape = (None, side, side, layer.filters)
            if str(i) in self.position_layers:
                self.position_layers[str(i)].build(shape)
            for block in blocks:
                block.build(shape)
        self.final_conv.build(shape)
        self.head.build((None, self.final_conv.filters))

    def call(self, images, training=None):
        check_images(images, self.image_size)
        x = images
        for layer in self.stem:
            x = layer(x, training=training)
        for i, blocks in enumerate(self.stages):
            for layer in self.downsample_layers.get(str(i), []):
                x = layer(x, training=training)
            if str(i) in self.position_layers:
                x = self.position_layers[str(i)](x)
            for block in blocks:
                x = block(x, training=training)
        x = self.final_conv(x, training=training)
        return self.head(ops.mean(x, axis=(1, 2)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return base_model_config(self)

    def reparameterized(self):
        """The same tower in the folded form, with the folded weights."""
        config = self.get_config()
        folded = FastViT.from_config({**config, "folded": True})
        folded.build((None, self.image_size, self.image_size, 3))
        for source, target in zip(self._parts(), folded._parts(), strict=True):
            if not hasattr(source, "fold"):
                target.set_weights(source.get_weights())
                continue
            se = getattr(source, "se", None)
            target.set_weights(list(source.fold()) + (se.get_weights() if se else []))
        for source, target in zip(self._blocks(), folded._blocks(), strict=True):
            target.gamma_mlp.assign(source.gamma_mlp)
            if source.mixer == "attention":
                target.gamma_attention.assign(source.gamma_attention)
        return folded

    def _blocks(self):
        return [block for blocks in self.stages for block in blocks]

    def _parts(self):
        """Every re-parameterisable layer and every other weight holder, in
        one order for both forms."""
        parts = list(self.stem)
        for i, blocks in enumerate(self.stages):
            parts += self.downsample_layers.get(str(i), [])
            if str(i) in self.position_layers:
                parts.append(self.position_layers[str(i)])
            for block in blocks:
                if block.mixer == "repmixer":
                    parts += [block.token_mixer, block.mlp]
                else:
                    parts += [block.norm_layer, block.qkv, block.proj, block.mlp]
        return parts + [self.final_conv, self.head]
