"""A progress bar that suits where the output goes.

On a terminal it is Keras' `Progbar`. Anywhere else (a log file, a pipe, a
CI job) a bar redrawn with backspaces and colour codes only garbles the
file, so there it prints a plain line every `interval` seconds and one when
the work ends, as `fit` prints one line per epoch.

Example:

```python
progress = ProgressBar(unit_name="image")
for batch in [[1, 2], [3]]:
    progress.add(len(batch))
progress.close()  # "1200 images in 4.1 s (292.7 images/s)" off a terminal
```
"""

import sys
import time

import keras


class ProgressBar:
    """Counts units of work and shows them (see the module docstring).

    Args:
        target: int or None, the number of units expected.
        unit_name: str, what a unit is ("image", "pair").
        interval: float, seconds between plain lines off a terminal.
        verbose: 0 shows nothing, 1 shows progress.
    """

    def __init__(self, target=None, unit_name="step", interval=30.0, verbose=1):
        self.target = target
        self.unit_name = unit_name
        self.interval = interval
        self.verbose = verbose
        self.done = 0
        self.start = self.last_line = time.time()
        self.terminal = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        self.bar = None
        if verbose and self.terminal:
            self.bar = keras.utils.Progbar(target, unit_name=unit_name)

    def add(self, count):
        """Records `count` more units done."""
        self.done += count
        if self.bar is not None:
            self.bar.add(count)
        elif self.verbose and time.time() - self.last_line >= self.interval:
            self.last_line = time.time()
            print(self.line(), flush=True)

    def update(self, done):
        """Records that `done` units are done in all."""
        self.add(done - self.done)

    def close(self):
        """Ends the bar (a terminal) or prints the closing line."""
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(self.done, finalize=True)
        else:
            print(self.line(), flush=True)

    def line(self):
        """e.g. "1200/5000 images in 4.1 s (292.7 images/s)"."""
        seconds = max(time.time() - self.start, 1e-9)
        count = f"{self.done}/{self.target}" if self.target else f"{self.done}"
        return (
            f"{count} {self.unit_name}s in {seconds:.1f} s "
            f"({self.done / seconds:.1f} {self.unit_name}s/s)"
        )
