"""Reading webdataset tar shards natively in tf.data.

A webdataset shard is a plain tar file whose members are grouped into
samples by key: the key is the member's path up to the first dot of its
base name, the extension is the rest (lower-cased), and consecutive members
with one key form one sample (`000042.jpg`, `000042.txt`, `000042.json`).
img2dataset and open_clip's training data use this layout.

Each shard is read whole (`tf.io.read_file`, so `gs://` and the other
TensorFlow file systems work as local paths do) and parsed with TensorFlow
ops only: the 512-byte blocks that carry the "ustar" magic and a valid
header checksum are located in one vectorised pass, and the chain of
headers (each header's size says where the next one starts) is checked
against them; only when a member's data itself looks like a header (a tar
inside a tar) does the parser walk the chain one header at a time. PAX
extended headers (`path=`) and GNU long names (`././@LongLink`) rename the
member that follows them; directories, links and global headers are
skipped. Memory: one whole shard per shard being read at once.

Samples without an image, without a caption, or cut off by the end of a
truncated shard are skipped and counted ("missing_image",
"missing_caption", "truncated"). A sample whose members are split across two
shards is seen as two incomplete samples and counted as such.
"""

import json

import tensorflow as tf

from keras_clip.data.locations import declared_size
from keras_clip.data.ordering import shard_elements

TAR_SUFFIX = ".tar"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
BLOCK = 512
SHARD_REASONS = ("missing_image", "missing_caption", "truncated")
_REGULAR_TYPES = (ord("0"), 0, ord("7"))
_PAX, _GLOBAL_PAX, _GNU_LONG_NAME, _GNU_LONG_LINK = (ord(c) for c in "xgLK")
# webdataset's rule: key up to the first dot of the base name, extension after.
_KEY_AND_EXTENSION = r"^((?:.*/|)[^.]+)[.]([^/]*)$"
_PAX_PATH = r"(?s)^(?:.*\n)?\d+ path=([^\n]*)\n.*$"
# Shards parsed at once when training; each is held whole in memory.
MAX_PARALLEL_TAR_SHARDS = 4


def member_options(image_column=None, caption_column=None):
    """Which members are a sample's image and caption.

    Args:
        image_column: extensions of the image member, ";"-separated as in
            webdataset (default "jpg;jpeg;png;webp": the first present wins).
        caption_column: "txt" (default), another extension, or
            "json:FIELD" for a string field of the `.json` member.

    Returns:
        dict of keyword arguments for `read_tar_shard`.
    """
    extensions = tuple(e.lower() for e in (image_column or ";".join(IMAGE_EXTENSIONS)).split(";"))
    caption = caption_column or "txt"
    if not all(extensions) or not caption or caption.startswith("json:") and len(caption) == 5:
        raise ValueError(
            f"Webdataset members: the image column ({image_column!r}; image_column= in "
            "Python, --image-column on the command line) must be extensions such as "
            f"'jpg;png' and the caption column ({caption_column!r}; caption_column=, "
            "--caption-column) an extension or 'json:FIELD'."
        )
    return {"image_extensions": extensions, "caption": caption}


def read_tar_shards(paths, training, seed=0, epoch=None, report=None, resampled=False, **options):
    """Shard paths -> dataset of {"image", "captions" (1,), "index", "epoch"},
    as `shards.read_shards` gives for TFRecords.

    Training parses up to 4 shards at once, in an order shuffled per epoch
    (`epoch`, a variable; see `ordering.epoch_permutation`); evaluation
    reads them in order. `resampled` draws each pass's shards with
    replacement (see `ordering.epoch_permutation`). Skipped samples are added to `report` (a
    `DataReport`) as each shard is parsed.
    """

    def samples(pass_epoch, path):
        found, skipped = read_tar_shard(path, **options)
        if report is not None:
            found = report.record_shard(skipped, found)
        count = tf.size(found["image"])
        return tf.data.Dataset.from_tensor_slices(
            {
                "image": found["image"],
                "captions": found["captions"],
                "epoch": tf.fill([count], pass_epoch),
            }
        )

    return shard_elements(paths, samples, training, seed, epoch, resampled, MAX_PARALLEL_TAR_SHARDS)


def read_tar_shard(path, caption="txt", image_extensions=IMAGE_EXTENSIONS):
    """One shard -> (samples, skipped).

    Args:
        path: scalar string tensor, the shard's path.
        caption: "txt" (the `.txt` member; any extension works) or
            "json:FIELD" (a string or list-of-strings field of the `.json`
            member, parsed in Python; text members stay in-graph).
        image_extensions: extensions whose member is the sample's image.

    Returns:
        samples: dict of "key", "image" (encoded bytes) and "captions" (a
            ragged (samples, None) string tensor) for each complete sample,
            in shard order;
        skipped: int64 (3,), counts for `SHARD_REASONS`.
    """
    contents = tf.io.read_file(path)
    members = _members(contents)
    names, extensions = _split_names(members["name"])
    is_member = members["regular"] & tf.strings.regex_full_match(
        members["name"], _KEY_AND_EXTENSION
    )
    keys = tf.boolean_mask(names, is_member)
    extensions = tf.boolean_mask(extensions, is_member)
    offsets = tf.boolean_mask(members["offset"], is_member)
    sizes = tf.boolean_mask(members["size"], is_member)
    cut = tf.boolean_mask(members["cut"], is_member)

    count = tf.size(keys, out_type=tf.int64)
    starts = tf.cond(
        count > 0,
        lambda: tf.concat([[True], tf.not_equal(keys[1:], keys[:-1])], axis=0),
        lambda: tf.zeros([0], tf.bool),
    )
    group = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    groups = tf.reduce_sum(tf.cast(starts, tf.int64))
    caption_extension = "json" if caption.startswith("json:") else caption
    image = _first_member(group, groups, _is_any(extensions, image_extensions) & ~cut)
    text = _first_member(group, groups, tf.equal(extensions, caption_extension) & ~cut)
    has_cut = tf.math.unsorted_segment_max(tf.cast(cut, tf.int32), group, groups) > 0
    complete = (image >= 0) & (text >= 0) & ~has_cut
    # In a truncated shard the last sample, when incomplete, was cut off.
    is_last = tf.equal(tf.range(groups, dtype=tf.int64), groups - 1)
    truncated = has_cut | (is_last & members["truncated"] & ~complete)
    kept_image, kept_text = tf.boolean_mask(image, complete), tf.boolean_mask(text, complete)
    captions = tf.strings.substr(
        contents, tf.gather(offsets, kept_text), tf.gather(sizes, kept_text)
    )
    if caption.startswith("json:"):
        captions = _json_field(captions, caption.split(":", 1)[1])
    else:
        captions = tf.RaggedTensor.from_row_lengths(captions, tf.ones_like(kept_text))
    samples = {
        "key": tf.gather(keys, kept_image),
        "image": tf.strings.substr(
            contents, tf.gather(offsets, kept_image), tf.gather(sizes, kept_image)
        ),
        "captions": captions,
    }
    # Outside truncated samples no member is cut, so `image` and `text`
    # (first uncut members) tell what each sample has.
    counts = tf.stack(
        [
            tf.reduce_sum(tf.cast((image < 0) & ~truncated, tf.int64)),
            tf.reduce_sum(tf.cast((image >= 0) & (text < 0) & ~truncated, tf.int64)),
            tf.reduce_sum(tf.cast(truncated, tf.int64)) + tf.cast(members["broken"], tf.int64),
        ]
    )
    return samples, counts


def _is_any(strings, choices):
    return tf.reduce_any(tf.stack([tf.equal(strings, c) for c in choices]), axis=0)


def _first_member(group, groups, mask):
    """Per group, the index of its first member where `mask` holds, else -1."""
    index = tf.range(tf.size(group, out_type=tf.int64), dtype=tf.int64)
    big = tf.fill(tf.shape(index), tf.int64.max)
    first = tf.math.unsorted_segment_min(tf.where(mask, index, big), group, groups)
    return tf.where(first == tf.int64.max, tf.constant(-1, tf.int64), first)


def _split_names(names):
    keys = tf.strings.regex_replace(names, _KEY_AND_EXTENSION, r"\1")
    extensions = tf.strings.lower(tf.strings.regex_replace(names, _KEY_AND_EXTENSION, r"\2"))
    return keys, extensions


def _json_field(documents, field):
    """A string (or list of strings) field of JSON documents -> ragged
    captions, one row per document (empty where the field is missing)."""

    def parse(values):
        captions, lengths = [], []
        for value in values.numpy():
            try:
                found = json.loads(value.decode("utf-8")).get(field)
            except (ValueError, AttributeError):
                found = None
            found = [found] if isinstance(found, str) else found
            found = [c for c in found if isinstance(c, str)] if isinstance(found, list) else []
            captions.extend(found)
            lengths.append(len(found))
        return tf.constant(captions, tf.string, [len(captions)]), tf.constant(
            lengths, tf.int64, [len(lengths)]
        )

    captions, lengths = tf.py_function(parse, [documents], (tf.string, tf.int64))
    captions.set_shape([None])
    lengths.set_shape([None])
    return tf.RaggedTensor.from_row_lengths(captions, lengths)


# === Tar headers ===


def _octal(fields):
    """uint8 (M, width) octal text fields (NUL or space padded) -> int64 (M,)."""
    digits = tf.cast(fields, tf.int64) - ord("0")
    is_digit = (digits >= 0) & (digits <= 7)
    value = tf.zeros(tf.shape(fields)[:1], tf.int64)
    for column in range(fields.shape[1]):
        value = tf.where(is_digit[:, column], value * 8 + digits[:, column], value)
    return value


def _members(contents):
    """The tar's members, in order: name, data offset and size, whether it
    is a regular file and whether its data is cut off by the end of file;
    `broken` when the header chain stops at a block that is no header
    before the archive's end (a corrupt shard), `truncated` when the file
    ends without tar's end-of-archive blocks."""
    length = tf.cast(tf.strings.length(contents), tf.int64)
    num_blocks = length // BLOCK
    block_starts = tf.range(num_blocks, dtype=tf.int64) * BLOCK
    magic = tf.strings.substr(
        contents, block_starts + 257, tf.fill([num_blocks], tf.constant(5, tf.int64))
    )
    candidates = tf.where(tf.equal(magic, "ustar"))[:, 0]
    headers = tf.strings.substr(
        contents, candidates * BLOCK, tf.fill(tf.shape(candidates), tf.constant(BLOCK, tf.int64))
    )
    raw = tf.reshape(tf.io.decode_raw(headers, tf.uint8), [-1, BLOCK])
    wide = tf.cast(raw, tf.int64)
    checksum = tf.reduce_sum(wide, axis=1) - tf.reduce_sum(wide[:, 148:156], axis=1) + 8 * 32
    valid = tf.equal(checksum, _octal(raw[:, 148:156]))
    candidates = tf.boolean_mask(candidates, valid)
    headers, raw = tf.boolean_mask(headers, valid), tf.boolean_mask(raw, valid)
    sizes = _octal(raw[:, 124:136])
    following = candidates + 1 + (sizes + BLOCK - 1) // BLOCK

    # Fast path: every candidate is a header, each where the last one ends.
    chained = tf.reduce_all(tf.equal(following[:-1], candidates[1:])) & _is_header(
        candidates, tf.constant(0, tf.int64)
    )
    chain = tf.cond(
        chained,
        lambda: tf.range(tf.size(candidates, out_type=tf.int64), dtype=tf.int64),
        lambda: _walk(candidates, following),
    )
    candidates, following = tf.gather(candidates, chain), tf.gather(following, chain)
    headers, raw, sizes = tf.gather(headers, chain), tf.gather(raw, chain), tf.gather(sizes, chain)
    # The chain ends at the last header, or at a block that is no header.
    end = tf.cond(tf.size(chain) > 0, lambda: following[-1], lambda: tf.constant(0, tf.int64))
    rest = tf.strings.substr(contents, tf.minimum(end * BLOCK, length), length)
    broken = (end < num_blocks) & ~tf.strings.regex_full_match(rest, r"(?s)\x00*")
    # No end-of-archive blocks after the last header: the file was cut.
    truncated = end >= num_blocks

    offsets = (candidates + 1) * BLOCK
    cut = offsets + sizes > length
    type_flag = tf.cast(raw[:, 156], tf.int32)
    data = tf.strings.substr(contents, tf.minimum(offsets, length), sizes)
    is_pax, is_long = tf.equal(type_flag, _PAX), tf.equal(type_flag, _GNU_LONG_NAME)
    is_meta = is_pax | is_long | _is_any(type_flag, (_GLOBAL_PAX, _GNU_LONG_LINK))
    names = _header_names(headers)
    pax_paths = tf.strings.regex_replace(data, _PAX_PATH, r"\1")
    has_pax_path = is_pax & tf.strings.regex_full_match(data, _PAX_PATH)
    long_names = tf.strings.regex_replace(data, r"(?s)\x00.*$", "")
    names = _rename(names, is_meta, has_pax_path, pax_paths)
    names = _rename(names, is_meta, is_long, long_names)
    return {
        "name": names,
        "offset": offsets,
        "size": sizes,
        "regular": _is_any(type_flag, _REGULAR_TYPES),
        "cut": cut,
        "broken": broken,
        "truncated": truncated,
    }


def _walk(candidates, following):
    """Positions (in `candidates`) of the headers reached from block 0."""

    def body(block, chain):
        position = tf.searchsorted(candidates, block[None], out_type=tf.int64)[0]
        return following[position], chain.write(chain.size(), position)

    _, chain = tf.while_loop(
        lambda block, chain: _is_header(candidates, block),
        body,
        (
            tf.constant(0, tf.int64),
            tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[]),
        ),
    )
    return tf.cast(chain.stack(), tf.int64)


def _is_header(candidates, block):
    padded = tf.concat([candidates, [-1]], axis=0)  # position may be one past the end
    position = tf.searchsorted(candidates, block[None], out_type=tf.int64)[0]
    return tf.equal(tf.gather(padded, position), block)


def _header_names(headers):
    """ustar names: `prefix/name` when the prefix field is set."""
    name = tf.strings.regex_replace(tf.strings.substr(headers, 0, 100), r"(?s)\x00.*$", "")
    prefix = tf.strings.regex_replace(tf.strings.substr(headers, 345, 155), r"(?s)\x00.*$", "")
    return tf.where(tf.strings.length(prefix) > 0, prefix + "/" + name, name)


def _rename(names, is_meta, renames, new_names):
    """Applies each renaming meta member to the next non-meta member."""
    entry = tf.cumsum(tf.cast(~is_meta, tf.int64), exclusive=True)
    count = tf.size(names, out_type=tf.int64) + 1
    index = tf.range(tf.size(names, out_type=tf.int64), dtype=tf.int64)
    source = tf.math.unsorted_segment_max(tf.where(renames, index, -1), entry, count)
    source = tf.gather(source, entry)
    return tf.where((source >= 0) & ~is_meta, tf.gather(new_names, tf.maximum(source, 0)), names)


# === Sample counts ===

_COUNTS = {}


def count_samples(paths, **options):
    """Complete samples in webdataset shards: from img2dataset's
    `NNNNN_stats.json` ("successes") or open_clip's `sizes.json` beside the
    shards when present, else by reading each shard once (memoised for the
    process, keyed on path, size and modification time)."""
    total = 0
    for path in paths:
        stats = declared_size(path)
        if stats is None:
            info = tf.io.gfile.stat(path)
            cache_key = (path, info.length, info.mtime_nsec, repr(sorted(options.items())))
            if cache_key not in _COUNTS:
                samples, _ = read_tar_shard(tf.constant(path), **options)
                _COUNTS[cache_key] = int(tf.size(samples["key"]))
            stats = _COUNTS[cache_key]
        total += stats
    return total
