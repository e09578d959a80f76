"""Published CLIP checkpoints in and out: Hugging Face, open_clip, OpenAI."""

from keras_clip.pretrained.loading import from_pretrained
from keras_clip.pretrained.loading import read_checkpoint
from keras_clip.pretrained.loading import save_pretrained
from keras_clip.pretrained.safetensors_io import SafetensorsTensors
from keras_clip.pretrained.safetensors_io import read_safetensors
from keras_clip.pretrained.safetensors_io import write_safetensors
