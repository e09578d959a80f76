"""Tokenising web junk: 3,000 random Unicode strings, some 3,000 characters
long, some one long word, with each tokenizer type; one JSON line.

    KERAS_BACKEND=tensorflow python benchmarks/long_captions.py --bpe bpe_simple_vocab_16e6.txt.gz

The CLIP BPE merges a word in time that grows with the square of its length;
`keras_clip.tokenizers.clip_bpe.MAX_WORD_CHARACTERS` bounds that. Reports the
median of `--repeats` runs in seconds per tokenizer, against the time of the
same number of ordinary captions, and the peers measured in the same run:
open_clip's `SimpleTokenizer` on the same BPE file (if open_clip is
installed), and the `sentencepiece` library's own processor on the two
SentencePiece models trained here (SigLIP's unigram, Gemma's byte-fallback
BPE), if sentencepiece is installed.
"""

import argparse
import json
import os
import random
import statistics
import tempfile
import time

import numpy as np

# Letters of several scripts, digits, punctuation, spaces and emoji.
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?/+=-_"
    "éèàüöñçßøåæœ αβγδεζηθικλμνξοπρστυφχψω абвгдежзийклмнопрстуфхцчшщ"
    "あいうえおかきくけこ東京大阪中国日本語 한국어 العربية हिन्दी 🐱🐶👍🏽"
)


def junk_captions(count=3000, seed=0):
    rng = random.Random(seed)
    captions = []
    for index in range(count):
        if index % 100 == 0:  # 3,000 random characters
            captions.append("".join(rng.choices(ALPHABET, k=3000)))
        elif index % 100 == 50:  # one 3,000-character word
            captions.append(rng.choice("abcxyz") * 3000)
        elif index % 10 == 5:  # a base64-like blob
            captions.append("".join(rng.choices(ALPHABET[:62], k=rng.randint(200, 1500))))
        else:
            captions.append("".join(rng.choices(ALPHABET, k=rng.randint(1, 300))))
    return captions


def open_clip_simple_tokenizer():
    """open_clip's SimpleTokenizer class, or None. Its module is loaded on
    its own: the package's __init__ imports torchvision, whose compiled ops
    may not load beside a CPU torch."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "tokenizer.py")
    module_spec = importlib.util.spec_from_file_location("open_clip_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SimpleTokenizer


def sentencepiece_directories(folder, captions):
    """{name: directory} of two SentencePiece tokenizers trained on
    ordinary words and some of `captions`, laid out as SigLIP ("spiece.model")
    and SigLIP 2 ("tokenizer.model", Gemma's) checkpoints keep them."""
    import sentencepiece

    rng = random.Random(1)
    words = "a photo of the red blue circle square cat dog bird café naïve über big".split()
    sentences = [" ".join(rng.choices(words, k=rng.randint(3, 9))) for _ in range(2000)]
    layouts = {  # fmt: skip
        "siglip_unigram": (
            "unigram",
            "spiece.model",
            "SiglipTokenizer",
            {"pad_id": 0, "eos_id": 1, "unk_id": 2, "bos_id": -1},
        ),
        "gemma_bpe": (
            "bpe",
            "tokenizer.model",
            "GemmaTokenizer",
            {"pad_id": 0, "eos_id": 1, "bos_id": 2, "unk_id": 3, "byte_fallback": True},
        ),
    }
    found = {}
    for name, (model_type, file_name, tokenizer_class, options) in layouts.items():
        directory = os.path.join(folder, name)
        os.makedirs(directory)
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences + captions[:200]),
            model_prefix=os.path.join(directory, "trained"),
            vocab_size=1000,
            model_type=model_type,
            character_coverage=1.0,
            num_threads=1,
            minloglevel=2,
            **options,
        )
        os.rename(os.path.join(directory, "trained.model"), os.path.join(directory, file_name))
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": tokenizer_class}, f)
        found[name] = (directory, file_name)
    return found


def padded_ids(encode, context_length):
    """A tokenizer from `encode` (texts -> lists of ids): ids cut to
    `context_length` and zero-padded, as keras-clip's tokenizers return them."""

    def tokenize(texts):
        rows = np.zeros((len(texts), context_length), "int32")
        for row, ids in zip(rows, encode(texts)):
            row[: len(ids[:context_length])] = ids[:context_length]
        return rows

    return tokenize


def median_seconds(tokenizer, captions, repeats):
    tokenizer(captions[:8])  # traces
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(tokenizer(captions))
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpe", required=True, help="CLIP's bpe_simple_vocab_16e6.txt.gz.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    import keras_clip

    captions = junk_captions(args.count)
    ordinary = ["a photo of a red circle on the left."] * args.count
    bpe = keras_clip.Tokenizer.from_clip_bpe(args.bpe)
    wordpiece = keras_clip.Tokenizer.from_corpus(ordinary + captions[:200], 2000)
    report = {"captions": args.count, "longest": max(map(len, captions))}
    for name, tokenizer in (("clip_bpe", bpe), ("wordpiece", wordpiece)):
        report[f"{name}_junk_s"] = median_seconds(tokenizer, captions, args.repeats)
        report[f"{name}_ordinary_s"] = median_seconds(tokenizer, ordinary, args.repeats)
    SimpleTokenizer = open_clip_simple_tokenizer()
    if SimpleTokenizer is not None:
        peer = SimpleTokenizer(args.bpe)
        report["open_clip_junk_s"] = median_seconds(peer, captions, args.repeats)
        report["open_clip_ordinary_s"] = median_seconds(peer, ordinary, args.repeats)
    try:
        import sentencepiece
    except ImportError:
        sentencepiece = None
    if sentencepiece is not None:
        with tempfile.TemporaryDirectory() as folder:
            for name, (directory, file_name) in sentencepiece_directories(folder, captions).items():
                tokenizer = keras_clip.Tokenizer.from_pretrained(directory, context_length=64)
                report[f"{name}_junk_s"] = median_seconds(tokenizer, captions, args.repeats)
                report[f"{name}_ordinary_s"] = median_seconds(tokenizer, ordinary, args.repeats)
                processor = sentencepiece.SentencePieceProcessor(
                    model_file=os.path.join(directory, file_name)
                )
                peer = padded_ids(processor.encode, 64)
                report[f"sentencepiece_{name}_junk_s"] = median_seconds(
                    peer, captions, args.repeats
                )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
