"""CLIP models, their named shapes and their image preprocessing."""

from keras_clip.models.architectures import architecture_config
from keras_clip.models.architectures import architecture_names
from keras_clip.models.clip import CLIP
from keras_clip.models.clip_lite import CLIPLite
from keras_clip.models.coca import CoCa
from keras_clip.models.optimizer import default_optimizer
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.reparameterization import reparameterized
from keras_clip.models.sharding import FullyShardedDataParallel
