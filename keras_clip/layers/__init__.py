"""Building blocks of the towers and heads (the objectives live in
`keras_clip.objectives`)."""

from keras_clip.layers.activations import quick_gelu
from keras_clip.layers.attention import MultiHeadSelfAttention
from keras_clip.layers.attention_pool import AttentionPool2D
from keras_clip.layers.attentional_pooler import AttentionalPooler
from keras_clip.layers.convnext_block import ConvNeXtBlock
from keras_clip.layers.convolutional_stem import ConvolutionalStem
from keras_clip.layers.cross_attention import MultiHeadCrossAttention
from keras_clip.layers.cross_attention_block import CrossAttentionBlock
from keras_clip.layers.eva_block import EVABlock
from keras_clip.layers.post_norm_block import PostNormTransformerBlock
from keras_clip.layers.projection_block import ProjectionBlock
from keras_clip.layers.relative_position_mlp import RelativePositionMLP
from keras_clip.layers.reparam_conv import ReparamConv2D
from keras_clip.layers.swin_block import PatchMerging
from keras_clip.layers.swin_block import SwinBlock
from keras_clip.layers.t5_block import T5EncoderBlock
from keras_clip.layers.transformer_block import TransformerBlock
from keras_clip.layers.vitamin_stem import MbConvBlock
from keras_clip.layers.vitamin_stem import ViTaminStem
