"""OpenAI's caption clean-up, the Python-side part: ftfy and HTML entities.

OpenAI's CLIP tokenizer, and open_clip's `SimpleTokenizer`, first run each
text through `ftfy.fix_text` (mojibake such as "cafÃ©" -> "café", Latin
ligatures "ﬁ" -> "fi", full-width forms "ＦＵＬＬ" -> "FULL", control
characters removed, ...) and `html.unescape` twice ("&amp;amp;" -> "&"),
then collapse whitespace. The tokenizers here do the control characters and
the whitespace in the graph (so the SavedModel does them too); ftfy's
repairs are heuristics with large tables that only exist in Python. With
`python_clean=True` a tokenizer applies `clean_text` to Python input and the
data pipeline applies it to every caption (through `tf.numpy_function`),
which gives open_clip's ids. ftfy is then needed (`pip install ftfy`).

Example:

```python
clean_text("donâ€™t &amp; ﬁne")  # "don't & fine"
```
"""

import html


def clean_text(text):
    """ftfy.fix_text, then HTML unescaped twice, then stripped (str -> str)."""
    try:
        import ftfy
    except ImportError:
        raise ImportError(
            "python_clean=True needs ftfy (pip install ftfy), as OpenAI's tokenizer does."
        ) from None
    text = ftfy.fix_text(text)
    return html.unescape(html.unescape(text)).strip()


def clean_bytes(texts):
    """`clean_text` over an array of UTF-8 bytes (for tf.numpy_function)."""
    import numpy as np

    cleaned = [
        clean_text(t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)).encode("utf-8")
        for t in np.asarray(texts).reshape(-1)
    ]
    return np.array(cleaned, dtype=object).reshape(np.shape(texts))
