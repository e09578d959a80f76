"""MobileCLIP's convolutional patch stem (timm's `ConvStem` of `vit_base_mci_224`)."""

import keras


@keras.saving.register_keras_serializable(package="keras_clip")
class ConvolutionalStem(keras.layers.Layer):
    """Patches of 16 x 16 pixels by three strided convolutions.

    A 4 x 4 convolution of stride 4 to width / 4 channels, BatchNorm and
    exact GELU; a 2 x 2 convolution of stride 2, BatchNorm and GELU; a
    biased 2 x 2 convolution of stride 2 to `width` channels. This replaces
    a ViT's single patch convolution in MobileCLIP's ViT-B.

    Args:
        width: int. Output channels; a multiple of 4.

    Call arguments:
        images: float (batch, height, width, 3); sides multiples of 16.

    Returns:
        float (batch, height / 16, width / 16, width).

    Example:

    ```python
    stem = ConvolutionalStem(64)
    stem(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 2, 2, 64)
    ```
    """

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        if width % 4:
            raise ValueError(f"The stem's width must be a multiple of 4, got {width}.")
        self.width = width

    def build(self, input_shape):
        policy = self.dtype_policy
        narrow = self.width // 4
        # === Layers ===
        self.convolutions = [
            keras.layers.Conv2D(narrow, 4, strides=4, use_bias=False, dtype=policy, name="conv_0"),
            keras.layers.Conv2D(narrow, 2, strides=2, use_bias=False, dtype=policy, name="conv_1"),
            keras.layers.Conv2D(self.width, 2, strides=2, dtype=policy, name="conv_2"),
        ]
        self.norms = [
            keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=policy, name=name)
            for name in ("bn_0", "bn_1")
        ]
        shape = tuple(input_shape)
        for index, convolution in enumerate(self.convolutions):
            convolution.build(shape)
            shape = convolution.compute_output_shape(shape)
            if index < 2:
                self.norms[index].build(shape)

    def call(self, images, training=None):
        x = images
        for index, convolution in enumerate(self.convolutions):
            x = convolution(x)
            if index < 2:
                x = keras.activations.gelu(
                    self.norms[index](x, training=training), approximate=False
                )
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        side = [None if s is None else s // 16 for s in (height, width)]
        return (batch, side[0], side[1], self.width)

    def get_config(self):
        config = super().get_config()
        config.update({"width": self.width})
        return config
