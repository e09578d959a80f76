"""Optional dependencies, checked before work starts.

Example:

```python
require(("onnx", "onnxruntime", "tf2onnx"), "ONNX export", extra="onnx")
```
"""

import importlib.util


def require(modules, purpose, extra=None):
    """Raises ImportError naming what to install unless every module in
    `modules` can be imported (nothing is imported here).

    Args:
        modules: module names, e.g. ("onnx", "tf2onnx").
        purpose: what needs them, for the message ("ONNX export").
        extra: the keras-clip extra that installs them, or None (then the
            message names the packages).
    """
    missing = missing_modules(modules)
    if missing:
        install = f"'keras-clip[{extra}]'" if extra else " ".join(missing)
        raise ImportError(f"{purpose} needs {', '.join(missing)}: pip install {install}.")


def missing_modules(modules):
    """The names in `modules` that cannot be imported (none is imported)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]
