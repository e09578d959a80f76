"""SentencePiece model protos: the wire format, and a BPE model written
from a Hugging Face `tokenizer.json`.

`parsed_model` reads a serialized model's pieces, `serialized_model` and
`normalizer_spec` write one (the wire format of `sentencepiece_model.proto`,
by hand: no sentencepiece package needed); `tokenizers.unigram_proto`
writes its Unigram models with them.

transformers 5 saves Gemma's tokenizer (SigLIP 2's) as `tokenizer.json`
alone: a byte-fallback BPE with a vocabulary, ranked merges and added tokens,
but no `tokenizer.model`. tensorflow-text runs SentencePiece models, so this
module writes the equivalent model proto (the wire format of
`sentencepiece_model.proto`, by hand: no sentencepiece package needed).

The two BPEs agree when each multi-character piece is reached by merges:
SentencePiece joins the adjacent pair whose joined piece scores highest, so
a piece's score is minus the rank of its best merge; a multi-character
piece no merge makes is marked unused, so SentencePiece never makes it
either. Added tokens that are not special become user-defined pieces
(matched in the text, as transformers does); special ones are control
pieces. `tests/test_gemma_tokenizer.py` checks the ids against transformers.

Example:

```python
import json

with open("siglip2/tokenizer.json", encoding="utf-8") as f:
    model = sentencepiece_model_from_tokenizer_json(json.load(f))
keras_clip.tokenizers.SentencePieceTokenizer(model, end_piece="<eos>", pad_piece="<pad>")
```
"""

import re
import struct

# SentencePiece piece types and model types (sentencepiece_model.proto).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2
_BYTE_PIECE = re.compile(r"^<0x[0-9A-F]{2}>$")
_SPACE = "\u2581"


# === Wire format ===


def _varint(value):
    value &= (1 << 64) - 1  # negative int32 fields are ten-byte varints
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, value):
    """One field: ints and bools as varints, floats as fixed32, str/bytes
    (and nested messages, given as bytes) length-delimited."""
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    if isinstance(value, (bool, int)):
        return _varint(number << 3) + _varint(int(value))
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _read_varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
        if not byte & 0x80:
            return value, at


def _fields(data):
    """(number, value) of each field: varints as int, fixed32/64 as bytes,
    length-delimited as bytes."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 2:
            size, at = _read_varint(data, at)
            value, at = data[at : at + size], at + size
        else:
            size = 4 if wire == 5 else 8
            value, at = data[at : at + size], at + size
        yield number, value


def parsed_model(model):
    """([(piece, score, type)] in id order, model type, normalizer_spec
    bytes) of a serialized SentencePiece model (types: NORMAL, UNKNOWN,
    CONTROL, USER_DEFINED, UNUSED, BYTE; model types: UNIGRAM, BPE)."""
    pieces, model_type, normalizer = [], UNIGRAM, b""
    for number, value in _fields(model):
        if number == 1:
            fields = dict(_fields(value))
            score = struct.unpack("<f", fields[2])[0] if 2 in fields else 0.0
            pieces.append((fields.get(1, b"").decode("utf-8"), score, fields.get(3, NORMAL)))
        elif number == 2:
            model_type = dict(_fields(value)).get(3, UNIGRAM)
        elif number == 3:
            normalizer = value
    return pieces, model_type, normalizer


def normalizer_spec(name, charsmap=b"", dummy_prefix=True, collapse_whitespace=True):
    """NormalizerSpec bytes: the rule `name`, a precompiled character map
    (if any), "▁" before the text, whitespace runs collapsed; spaces are
    always escaped to "▁"."""
    spec = _field(1, name)
    if charsmap:
        spec += _field(2, charsmap)
    return spec + _field(3, dummy_prefix) + _field(4, collapse_whitespace) + _field(5, True)


def serialized_model(pieces, model_type, normalizer_spec, special_ids=(-1, -1, -1, -1),
                     byte_fallback=False):  # fmt: skip
    """ModelProto bytes of `pieces` [(piece, score, type)] in id order.

    Args:
        pieces: list of (str, float, int), the pieces in id order.
        model_type: UNIGRAM or BPE.
        normalizer_spec: bytes, a serialized NormalizerSpec.
        special_ids: the trainer spec's (unk, bos, eos, pad) ids; -1: none.
        byte_fallback: bool, the trainer spec's byte fallback.
    """
    body = bytearray()
    for piece, score, kind in pieces:
        body += _field(1, _field(1, piece) + _field(2, float(score)) + _field(3, kind))
    trainer = _field(3, model_type) + _field(4, len(pieces))
    if byte_fallback:
        trainer += _field(35, True)
    for number, index in zip((40, 41, 42, 43), special_ids, strict=True):
        trainer += _field(number, index)
    return bytes(body + _field(2, trainer) + _field(3, normalizer_spec))


def added_pieces(model, tokenizer_json=None):
    """(pieces, left-stripping pieces): the pieces transformers matches in
    the text before BPE ("added tokens"), tokenizer.json's or else the
    model's control, unknown and user-defined pieces (what transformers
    converts them to); and those that take the whitespace before them
    (`lstrip`, NLLB's "<mask>")."""
    if tokenizer_json is not None:
        tokens = tokenizer_json.get("added_tokens", [])
        for token in tokens:
            options = [k for k in ("rstrip", "single_word") if token.get(k)]
            if options:
                raise ValueError(f"Added token {token['content']!r} sets {options}: not supported.")
        stripping = [token["content"] for token in tokens if token.get("lstrip")]
        return [token["content"] for token in tokens], stripping
    pieces, _, _ = parsed_model(model)
    kinds = (UNKNOWN, CONTROL, USER_DEFINED)
    return [piece for piece, _, kind in pieces if kind in kinds], []


# === Conversion ===


def _check_supported(tokenizer_json):
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        raise ValueError(
            "Only a byte-fallback BPE tokenizer.json (Gemma's, SigLIP 2's) converts to a "
            f"SentencePiece model; this one has model type {model.get('type')!r} and "
            f"byte_fallback={model.get('byte_fallback')!r}."
        )
    for key in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
        if model.get(key):
            raise ValueError(f"tokenizer.json's BPE option {key}={model[key]!r} is not supported.")
    normalizer = tokenizer_json.get("normalizer") or {}
    for step in normalizer.get("normalizers", [normalizer] if normalizer else []):
        space = step.get("type") == "Replace" and step.get("pattern") == {"String": " "}
        if not (step.get("type") == "Lowercase" or space and step.get("content") == _SPACE):
            raise ValueError(f"tokenizer.json's normalizer step {step} is not supported.")
    splitter = tokenizer_json.get("pre_tokenizer")
    if splitter and not (
        splitter.get("type") == "Split" and splitter.get("pattern") == {"String": " "}
    ):
        # Splitting at " " after the normaliser made every space "▁" is a no-op.
        raise ValueError(f"tokenizer.json's pre-tokenizer {splitter} is not supported.")


def _merge_ranks(merges):
    """Best (lowest) merge rank of each piece the merges make."""
    ranks = {}
    for rank, merge in enumerate(merges):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks.setdefault(left + right, rank)
    return ranks


def sentencepiece_model_from_tokenizer_json(tokenizer_json):
    """Serialized SentencePiece `ModelProto` bytes equivalent to a
    byte-fallback BPE `tokenizer.json` (a parsed dict).

    Args:
        tokenizer_json: dict, the parsed `tokenizer.json`.

    Returns:
        bytes for `SentencePieceTokenizer(model=...)`.
    """
    _check_supported(tokenizer_json)
    model = tokenizer_json["model"]
    pieces = dict(model["vocab"])
    added = {token["content"]: token for token in tokenizer_json.get("added_tokens", [])}
    for token in added.values():
        pieces.setdefault(token["content"], token["id"])
    by_id = sorted(pieces.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("tokenizer.json's ids are not 0..N-1 without gaps.")
    ranks = _merge_ranks(model.get("merges", []))
    unknown = model.get("unk_token")
    pieces = []
    for piece, _ in by_id:
        score, kind = 0.0, NORMAL
        if piece in added:
            kind = CONTROL if added[piece].get("special") else USER_DEFINED
        if piece == unknown:
            kind = UNKNOWN
        elif _BYTE_PIECE.match(piece):
            kind = BYTE
        elif kind == NORMAL and piece in ranks:
            score = -float(ranks[piece])
        elif kind == NORMAL and len(piece) > 1:
            kind = UNUSED
        pieces.append((piece, score, kind))
    unknown_id = dict(by_id).get(unknown, -1) if unknown else -1
    normalizer = normalizer_spec("identity", dummy_prefix=False, collapse_whitespace=False)
    return serialized_model(pieces, BPE, normalizer, (unknown_id, -1, -1, -1), byte_fallback=True)
