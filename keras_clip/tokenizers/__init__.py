"""Caption tokenizers on tensorflow-text ops (imports TensorFlow).

`Tokenizer` is the contract and the way in (`Tokenizer.from_corpus`,
`from_clip_bpe`, `from_pretrained`, `load`); `WordPieceTokenizer`,
`ClipBPETokenizer`, `SentencePieceTokenizer` (SigLIP's, XLM-R's, NLLB's...) and
`ByteLevelBPETokenizer` (RoBERTa's) are the types.
All run in tf.data and in an exported SavedModel.

Example:

```python
from keras_clip.tokenizers import Tokenizer

tokenizer = Tokenizer.from_corpus(["a red circle", "a blue square"], vocabulary_size=100)
tokenizer.save("tokenizer/")
same = Tokenizer.load("tokenizer/")
```
"""

from keras_clip.tokenizers.base import Tokenizer
from keras_clip.tokenizers.byte_level_bpe import ByteLevelBPETokenizer
from keras_clip.tokenizers.clip_bpe import ClipBPETokenizer
from keras_clip.tokenizers.sentencepiece import SentencePieceTokenizer
from keras_clip.tokenizers.wordpiece import WordPieceTokenizer
