"""Building blocks and loss layers of keras-clip."""

from keras_clip.layers.activations import quick_gelu
from keras_clip.layers.attention import MultiHeadSelfAttention
from keras_clip.layers.attention_pool import AttentionPool2D
from keras_clip.layers.constraints import MaxValue
from keras_clip.layers.contrastive_objective import ContrastiveObjective
from keras_clip.layers.contrastive_objective import get_objective
from keras_clip.layers.infonce_loss import InfoNCELoss
from keras_clip.layers.jsd_loss import JSDLoss
from keras_clip.layers.prior_discriminator import PriorDiscriminator
from keras_clip.layers.projection_block import ProjectionBlock
from keras_clip.layers.siglip_loss import SigLIPLoss
from keras_clip.layers.transformer_block import TransformerBlock
