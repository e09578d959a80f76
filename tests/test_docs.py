"""The docs' numbers come from running the code."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.backend("tensorflow")
@pytest.mark.parametrize("script", ["make_loss_walkthrough.py", "make_jsd_walkthrough.py"])
def test_generated_page_is_what_the_code_gives(script):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, f"docs/{script}", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


def test_walkthrough_numbers_agree_with_a_numpy_hand_calculation():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    import make_loss_walkthrough as page

    images = page.IMAGES / np.linalg.norm(page.IMAGES, axis=1, keepdims=True)
    texts = page.TEXTS / np.linalg.norm(page.TEXTS, axis=1, keepdims=True)
    logits = images @ texts.T / page.TEMPERATURE
    rows = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(1)))
    columns = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(0)))
    _, total = page.walkthrough(normalize=True)
    np.testing.assert_allclose(total, (rows + columns) / 2, rtol=1e-5)


def test_the_tutorial_example_loss_is_0_000361_not_0_00016():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    import make_loss_walkthrough as page

    logits = np.eye(3) @ page.TUTORIAL_TEXTS.astype("float64").T / 0.07
    image_to_text = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(1)))
    np.testing.assert_allclose(image_to_text, 3.6128e-4, rtol=1e-4)
    section = page.tutorial_section()
    assert (
        "**0.000361**" in section and "log10 instead of the natural log gives 0.000157" in section
    )


def test_jsd_numbers_agree_with_a_numpy_hand_calculation():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    import make_jsd_walkthrough as page

    images = page.IMAGES / np.linalg.norm(page.IMAGES, axis=1, keepdims=True)
    texts = page.TEXTS / np.linalg.norm(page.TEXTS, axis=1, keepdims=True)
    critic = images @ texts.T / page.TEMPERATURE
    positives = np.diag(critic)
    negatives = critic[np.arange(3), (np.arange(3) + 1) % 3]
    expected = np.mean(np.log1p(np.exp(-positives))) + np.mean(np.log1p(np.exp(negatives)))
    np.testing.assert_allclose(page.numbers()["loss"], expected, rtol=1e-5)


def test_fine_tuning_page_is_what_its_results_give():
    result = subprocess.run(
        [sys.executable, "docs/make_fine_tuning.py", "--report-only", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


def test_batch_size_study_page_is_what_its_results_give():
    """docs/batch-size-study.md and its table are regenerated from the
    committed results.json (the study itself takes half an hour)."""
    result = subprocess.run(
        [sys.executable, "examples/batch_size_study.py", "--report-only", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
