"""Image libraries' own messages on stderr, kept from the command line's
output.

TensorFlow's JPEG and PNG decoders are libjpeg and libpng, which write
straight to the process' stderr when they meet a corrupt file ("Corrupt
JPEG data: premature end of data segment", "Improper call to JPEG library
in state 201", "libpng warning: ..."). The data pipeline already skips such
a file and counts it (`keras_clip.data.DataReport`, "unreadable_image"), and
the command says so once, in its own words; these lines only alarm.

`filtered_native_stderr` runs its block with file descriptor 2 going
through a pipe whose lines are passed on, except those.

Example:

```python
import os

with filtered_native_stderr():
    os.write(2, b"Corrupt JPEG data: premature end of data segment\\n")  # dropped
    os.write(2, b"anything else\\n")  # passed on
```
"""

import contextlib
import os
import re
import sys
import threading

# libjpeg(-turbo)'s messages for damaged data (jerror.h), and libpng's prefix.
IMAGE_LIBRARY_MESSAGE = re.compile(
    rb"^(Corrupt JPEG data|Premature end of JPEG file|Input file read error|"
    rb"Improper call to JPEG library|Not a JPEG file|Invalid JPEG file structure|"
    rb"Bogus |Unsupported marker type|Huffman table 0x|Quantization table 0x|"
    rb"Arithmetic table 0x|Empty JPEG image|Unsupported JPEG |Invalid SOS parameters|"
    rb"Invalid component ID|Inconsistent progression sequence|Invalid progressive parameters|"
    rb"Sampling factors too large|Maximum supported image dimension|"
    rb"Warning: unknown JFIF revision|Warning: thumbnail image size|"
    rb"JPEG datastream contains no image|Didn't expect more than one scan|"
    rb"libpng (warning|error):)"
)


@contextlib.contextmanager
def filtered_native_stderr():
    """Inside, stderr lines from the image libraries are dropped (see the
    module docstring); everything else reaches stderr as before, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, saved), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder ends
        forwarder.join(timeout=10)
        os.close(saved)


def _forward(read_end, destination):
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if not IMAGE_LIBRARY_MESSAGE.match(line):
                    os.write(destination, line + b"\n")
            if pending and not IMAGE_LIBRARY_MESSAGE.match(pending):
                # A partial line (a progress bar): pass it on now.
                os.write(destination, pending)
                pending = b""
        if pending and not IMAGE_LIBRARY_MESSAGE.match(pending):
            os.write(destination, pending)
