"""`python -m keras_clip.cli ...`, the same as the `keras-clip` command."""

import sys

from keras_clip.cli import main

sys.exit(main())
