"""The real peer tools, run as their users run them: img2dataset and
autofaiss from the command line in their own environment (see
tests/peer-tools.txt), and a file server on the loopback interface for
img2dataset to download from."""

import contextlib
import functools
import http.server
import os
import subprocess
import threading

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVIRONMENT = os.environ.get("KERAS_CLIP_PEER_TOOLS", os.path.join(REPOSITORY, ".venv-peer-tools"))


def run_peer(program, *arguments, timeout=300, cwd=None):
    """Runs `program` (a command or `python`) of the peer environment;
    fails the test, with its output, when it exits non-zero.

    Returns:
        Its standard output.
    """
    path = os.path.join(ENVIRONMENT, "bin", program)
    if not os.path.exists(path):
        pytest.fail(
            f"The peer tools are not installed ({path} is missing): run "
            "`bash tests/run.sh --install`, or set KERAS_CLIP_PEER_TOOLS to a "
            "virtual environment holding tests/peer-tools.txt."
        )
    environment = dict(os.environ)
    environment.pop("PYTHONPATH", None)
    # No update checks or telemetry (the tools must not reach the network);
    # one OpenMP thread each, as the suite shares two cores.
    environment.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    return _run(program, [path, *arguments], timeout, cwd, environment)


def _run(name, command, timeout, cwd, environment):
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment,
    )
    if result.returncode != 0:
        pytest.fail(f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_folder(folder):
    """Serves `folder` over HTTP on 127.0.0.1 (a free port) while the block
    runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_clip_benchmark(*arguments, timeout=300):
    """Runs CLIP_benchmark (a test extra) in a process of its own, through
    tests/clip_benchmark_runner.py; fails the test when it exits non-zero."""
    import sys

    command = [sys.executable, "-m", "tests.clip_benchmark_runner", *arguments]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return _run("CLIP_benchmark", command, timeout, REPOSITORY, environment)
