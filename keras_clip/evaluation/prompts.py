"""Class names and prompt templates for zero-shot classification, by name.

The package ships the 1,000 ImageNet class names that OpenAI curated for
CLIP's zero-shot evaluation and OpenAI's 80 ImageNet prompt templates (and
the 7-template subset OpenAI found about as good), as text files in
`keras_clip/evaluation/metadata/`. A template is a str with one "{}" (or
"{c}", as CLIP_benchmark writes them) or a callable from a class name to a
prompt, as open_clip ships them.

Example:

```python
from keras_clip.evaluation import prompts

names = prompts.class_names("imagenet")            # 1000 str
makers = prompts.prompt_makers("openai_imagenet")  # 80 callables
makers[0]("goldfish")                               # 'a bad photo of a goldfish.'
```
"""

import functools
import os

METADATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metadata")

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a photo of the {}.",
    "a rendering of a {}.",
    "a drawing of a {}.",
)

# === Named sets ===
TEMPLATE_FILES = {
    "openai_imagenet": "openai_imagenet_templates.txt",
    "openai_imagenet_7": "openai_imagenet_templates_7.txt",
}
CLASS_NAME_FILES = {"imagenet": "imagenet_classnames.txt"}


def read_lines(path):
    """The non-blank lines of a UTF-8 text file, stripped."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def class_names(names):
    """Class names: a list of str, a shipped set's name ("imagenet") or a
    text file with one name per line."""
    if not isinstance(names, str):
        return [str(name) for name in names]
    if names in CLASS_NAME_FILES:
        return read_lines(os.path.join(METADATA_DIR, CLASS_NAME_FILES[names]))
    if os.path.isfile(names):
        return read_lines(names)
    raise ValueError(
        f"Unknown class names {names!r}: give a list, a text file or one of "
        f"{sorted(CLASS_NAME_FILES)}."
    )


def templates(spec=None):
    """Templates as given: None (the 6 `DEFAULT_TEMPLATES`), "default", a
    shipped set's name, a text file with one template per line, or a list
    of str and callables."""
    if spec is None or spec == "default":
        return list(DEFAULT_TEMPLATES)
    if isinstance(spec, str):
        if spec in TEMPLATE_FILES:
            return read_lines(os.path.join(METADATA_DIR, TEMPLATE_FILES[spec]))
        if os.path.isfile(spec):
            return read_lines(spec)
        raise ValueError(
            f"Unknown templates {spec!r}: give a list, a text file or one of "
            f"{['default', *sorted(TEMPLATE_FILES)]}."
        )
    return list(spec)


def prompt_makers(spec=None):
    """One callable per template, mapping a class name to its prompt.

    Raises:
        ValueError: no templates, a str template without exactly one "{}",
            or a callable that does not return a str.
    """
    makers = []
    for template in templates(spec):
        if callable(template):
            if not isinstance(template("x"), str):
                raise ValueError(f"Template {template!r} must return a str.")
            makers.append(template)
        elif isinstance(template, str) and template.count("{}") + template.count("{c}") == 1:
            makers.append(functools.partial(_fill, template))
        else:
            raise ValueError(
                "Each template needs exactly one '{}' or '{c}' (or is a callable); "
                f"got {template!r}."
            )
    if not makers:
        raise ValueError("No templates given.")
    return makers


def _fill(template, name):
    """The prompt of a str template: its "{}" or "{c}" replaced by `name`
    (other braces stay as they are)."""
    return template.replace("{}" if "{}" in template else "{c}", name)
