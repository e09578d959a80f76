"""Run as `python -m tests.embed_kill PART:WHEN embed ARGS...`.

Runs `keras-clip embed ARGS...` and sends itself SIGKILL while part PART is
written: WHEN "half" kills after its embedding files are in place but
before its metadata (the part's commit) is renamed; "after" right after the
whole part.
"""

import os
import signal
import sys

from keras_clip import cli
from keras_clip.evaluation import index as embeddings


def main():
    kill_part, when = sys.argv[1].split(":")
    kill_part = int(kill_part)
    write_part, replace = embeddings._write_part, os.replace

    def dying_replace(source, target):
        if target.endswith(".parquet"):
            os.kill(os.getpid(), signal.SIGKILL)
        replace(source, target)

    def watched_write_part(output, part, pending, count):
        if part == kill_part and when == "half":
            os.replace = dying_replace
        write_part(output, part, pending, count)
        if part == kill_part:
            os.kill(os.getpid(), signal.SIGKILL)

    embeddings._write_part = watched_write_part
    sys.exit(cli.main(sys.argv[2:]))


if __name__ == "__main__":
    main()
