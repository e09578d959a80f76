"""Training: the recipes the CLI and the examples share (`recipes`), step
checkpoints that resume a killed run (`checkpoints`), the training callbacks
(`callbacks`) and fine-tuning that keeps zero-shot skill (`fine_tuning`:
locked towers, WiSE-FT).

Example:

```python
from keras_clip import training

report, model, tokenizer = training.train_on_shapes(
    32, train_size=256, test_size=60, epochs=1, architecture="tiny-vit")
```
"""

from keras_clip.training import callbacks
from keras_clip.training import checkpoints
from keras_clip.training import fine_tuning
from keras_clip.training.callbacks import StopOnNonFiniteLoss
from keras_clip.training.checkpoints import StepCheckpoint
from keras_clip.training.checkpoints import fit_resumable
from keras_clip.training.fine_tuning import interpolate_weights
from keras_clip.training.fine_tuning import lock_tower
from keras_clip.training.recipes import OBJECTIVES
from keras_clip.training.recipes import build_model
from keras_clip.training.recipes import compile_for_training
from keras_clip.training.recipes import run_fit
from keras_clip.training.recipes import train_on_shapes
from keras_clip.training.recipes import training_callbacks
