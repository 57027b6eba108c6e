"""What an input is, from its first bytes (never from its name).

Each compression format and the pickle protocol announce themselves with a
fixed prefix; this module maps the first :data:`HEAD_SIZE` bytes to one of
the :class:`Kind` values.  The codecpickle magic is checked by the caller
first, so nothing here ever claims a codecpickle stream.
"""

from __future__ import annotations

import enum

__all__ = ["HEAD_SIZE", "Kind", "detect"]

#: Bytes needed to tell every kind apart.
HEAD_SIZE = 8


class Kind(enum.Enum):
    """A foreign input's outer layer: a bare pickle stream, or one wrapped
    in a compression format (whose content is a pickle, possibly with the
    array data joblib writes inline)."""

    PICKLE = "pickle"
    GZIP = "gzip"
    ZLIB = "zlib"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"  # the legacy .lzma ("alone") container
    ZSTD = "zstd"
    LZ4 = "lz4"
    #: joblib < 0.9.3's zlib files ("ZF" + hex length): joblib >= 0.10 never
    #: writes them; recognised only to say so.
    JOBLIB_ZFILE = "joblib-zfile"

    @property
    def compressed(self) -> bool:
        return self not in (Kind.PICKLE, Kind.JOBLIB_ZFILE)


_SIGNATURES = (
    (b"\x1f\x8b", Kind.GZIP),
    (b"\x28\xb5\x2f\xfd", Kind.ZSTD),
    (b"\x04\x22\x4d\x18", Kind.LZ4),
    (b"BZh", Kind.BZ2),
    (b"\xfd7zXZ\x00", Kind.XZ),
    # lzma "alone": the properties byte joblib's and xz's default presets
    # write (lc=3, lp=0, pb=2), then a little-endian dictionary size, which
    # is far below 2**24 for every preset, so the next byte is 0 too.
    # No pickle starts like this: ']' (EMPTY_LIST) is never followed by 0.
    (b"\x5d\x00", Kind.LZMA),
    (b"ZF", Kind.JOBLIB_ZFILE),
)

# Protocol 0 and 1 pickles have no PROTO opcode: they start with the first
# opcode that builds something.  The text opcodes must also be followed by
# what they take (a number, a quote, a module name), so that text files
# starting with one of those letters are not taken for pickles.
_PROTOCOL_0_1_STARTS = frozenset(b"(]}).NJKMGTUVX")
_TEXT_OPCODE_ARGUMENTS = {
    ord("I"): frozenset(b"0123456789-+"),
    ord("L"): frozenset(b"0123456789-+"),
    ord("F"): frozenset(b"0123456789-+.ni"),
    ord("S"): frozenset(b"'\""),
    ord("c"): frozenset(b"_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
}


def detect(head: bytes) -> Kind | None:
    """The kind of input starting with ``head`` (up to :data:`HEAD_SIZE`
    bytes), or None when it is none of them."""
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    if _is_zlib_header(head):
        return Kind.ZLIB
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Kind.PICKLE
    if head and head[0] in _PROTOCOL_0_1_STARTS:
        return Kind.PICKLE
    if len(head) >= 2 and head[1] in _TEXT_OPCODE_ARGUMENTS.get(head[0], ()):
        return Kind.PICKLE
    return None


def _is_zlib_header(head: bytes) -> bool:
    # RFC 1950: deflate with a window of at most 32 KiB (CMF 0x78 for the
    # 32 KiB window every zlib writer uses), no preset dictionary, and a
    # header checksum: CMF * 256 + FLG is a multiple of 31.
    if len(head) < 2 or head[0] != 0x78:
        return False
    return not head[1] & 0x20 and (head[0] * 256 + head[1]) % 31 == 0
