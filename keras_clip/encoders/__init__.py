"""Image and text towers."""

from keras_clip.encoders.convnext import ConvNeXt
from keras_clip.encoders.eva_vision import EVAVisionTransformer
from keras_clip.encoders.fastvit import FastViT
from keras_clip.encoders.m2m100_text import M2M100TextEncoder
from keras_clip.encoders.modified_resnet import ModifiedResNet
from keras_clip.encoders.multimodal_decoder import MultimodalDecoder
from keras_clip.encoders.naflex_vision import NaFlexVisionTransformer
from keras_clip.encoders.roberta_text import RobertaTextEncoder
from keras_clip.encoders.siglip_text import SigLIPTextTransformer
from keras_clip.encoders.siglip_vision import SigLIPVisionTransformer
from keras_clip.encoders.swin import SwinTransformer
from keras_clip.encoders.t5_text import T5TextEncoder
from keras_clip.encoders.text_transformer import TextTransformer
from keras_clip.encoders.vision_transformer import VisionTransformer
