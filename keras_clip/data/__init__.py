"""tf.data input pipelines for image-caption collections (imports TensorFlow).

Reading sources (`sources`, `shards`), decoding (`images`), the pipeline
(`pipeline`, `ordering`), the skipped-example report (`report`), the
dataset's state and its callback (`state`) and writing shards (`writing`)
are separate modules.

Example:

```python
from keras_clip import data

train = data.image_text_dataset("photos/", tokenizer, model, 64, seed=0)
model.fit(train, epochs=5, callbacks=[data.DataReportCallback(train)])
```
"""

from keras_clip.data.images import center_crop
from keras_clip.data.images import decode_rgb
from keras_clip.data.images import load_images
from keras_clip.data.images import normalize
from keras_clip.data.images import random_resized_crop
from keras_clip.data.pipeline import image_text_dataset
from keras_clip.data.report import REASONS
from keras_clip.data.report import DataReport
from keras_clip.data.sources import read_source
from keras_clip.data.state import DataReportCallback
from keras_clip.data.state import DataState
from keras_clip.data.writing import write_shards
from keras_clip.data.writing import write_tfrecords
