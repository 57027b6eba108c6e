"""A contract test kit for codecs, shipped so that plugin authors can reuse it.

Subclass :class:`CodecContractTests` in your test suite and set
``codec_class``; pytest then runs every check below against your codec::

    from codecpickle.testing import CodecContractTests
    from codecpickle_brotli import BrotliCodec

    class TestBrotliCodec(CodecContractTests):
        codec_class = BrotliCodec
        codec_params = {"lgwin": 22}   # optional extra constructor arguments

The base class's name does not start with ``Test``, so pytest does not
collect it on its own.  The checks cover the contract in
:mod:`codecpickle.codecs._base`: round trips over every buffer kind and many
sizes, levels and their refusal, stable parameters, wrong sizes refused,
concurrent use, and full ``dumps``/``loads`` and ``dump``/``load`` round
trips through codecpickle.  The kit needs pytest and numpy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import codecpickle
from codecpickle.codecs import Codec, get_codec
from codecpickle.codecs._base import NAME_PATTERN
from codecpickle.errors import InvalidOptionError

__all__ = ["CodecContractTests", "sample_data"]

#: Sizes every codec must round-trip, small and odd ones included.
SMALL_SIZES = (0, 1, 2, 7, 255, 4096, 65_537, 300_001)
DATA_KINDS = ("zeros", "random", "smooth", "text")


def sample_data(kind: str, size: int, seed: int = 0) -> bytes:
    """``size`` bytes of a given ``kind``: ``zeros`` and ``smooth`` (a
    float32 sine) compress well, ``random`` does not, ``text`` is in between."""
    if kind == "zeros":
        return bytes(size)
    if kind == "random":
        return np.random.default_rng(seed).bytes(size)
    if kind == "smooth":
        wave = np.sin(np.linspace(seed, seed + 100, size // 4 + 1)).astype(np.float32)
        return wave.tobytes()[:size]
    if kind == "text":
        words = b"codec pickle chunk level frame stream buffer array thread "
        return (words * (size // len(words) + 1))[:size]
    raise ValueError(f"unknown data kind {kind!r}")


def _buffer_of(kind: str, data: bytes) -> tuple[Any, int]:
    """``data`` held by a buffer of the given kind, with the itemsize hint the
    container would give for it."""
    if kind == "bytes":
        return data, 1
    if kind == "bytearray":
        return bytearray(data), 1
    if kind == "memoryview":
        return memoryview(bytearray(data)), 1
    if kind == "readonly-memoryview":
        return memoryview(data).toreadonly(), 1
    dtype = np.dtype(kind)
    count = len(data) // dtype.itemsize
    return np.frombuffer(data[: count * dtype.itemsize], dtype=dtype).copy(), dtype.itemsize


BUFFER_KINDS = ("bytes", "bytearray", "memoryview", "readonly-memoryview",
                "uint8", "int16", "float32", "float64")  # fmt: skip


def _as_bytes(buffer: Any) -> bytes:
    return memoryview(buffer).cast("B").tobytes()


class CodecContractTests:
    """Checks every codec must pass; subclass it with ``codec_class`` set.

    Optional class attributes: ``codec_params`` (extra constructor keyword
    arguments), ``valid_levels`` / ``invalid_levels`` (derived from the
    class's level range when ``None``), ``invalid_params`` (constructor
    keyword sets that must raise ``InvalidOptionError``) and
    ``large_size_level`` (level used for chunk-sized data; the fastest level
    when ``None``).
    """

    codec_class: ClassVar[type[Codec]]
    codec_params: ClassVar[dict[str, Any]] = {}
    valid_levels: ClassVar[Sequence[int] | None] = None
    invalid_levels: ClassVar[Sequence[object] | None] = None
    invalid_params: ClassVar[Sequence[dict[str, Any]]] = ()
    large_size_level: ClassVar[int | None] = None

    # -- helpers --------------------------------------------------------------

    def make_codec(self, **overrides: Any) -> Codec:
        """An instance of the codec under test."""
        return self.codec_class(**{**self.codec_params, **overrides})

    def levels_to_check(self) -> list[int]:
        """All levels for small ranges; the ends, the default and its
        neighbourhood for wide ones (zstd has 131095 levels)."""
        if self.valid_levels is not None:
            return list(self.valid_levels)
        low, high = self.codec_class.min_level, self.codec_class.max_level
        if high - low <= 32:
            return list(range(low, high + 1))
        default = self.codec_class.default_level
        return sorted({low, low + 1, high - 1, high, *range(max(low, default - 8), default + 9)})

    def levels_to_refuse(self) -> list[object]:
        """Below the minimum, above the maximum, and values of wrong types."""
        if self.invalid_levels is not None:
            return list(self.invalid_levels)
        low, high = self.codec_class.min_level, self.codec_class.max_level
        return [low - 1, high + 1, float(self.codec_class.default_level), "3", True, False]

    def round_trip(self, codec: Codec, data: Any, itemsize: int = 1) -> None:
        """Encode then decode (and decode_into) ``data``; assert equality."""
        view = memoryview(data).cast("B")
        original = view.tobytes()
        encoded = codec.encode(view, itemsize)
        assert view.tobytes() == original, "encode modified its input"
        decoded = codec.decode(memoryview(encoded).cast("B"), len(original))
        assert _as_bytes(decoded) == original
        out = np.empty(len(original), dtype=np.uint8)
        codec.decode_into(memoryview(encoded).cast("B"), memoryview(out))
        assert out.tobytes() == original

    def assert_refused(
        self, call: Callable[[], Any], original: bytes, *, may_recover: bool = False
    ) -> None:
        """``call`` must raise.  It may never return wrong data; with
        ``may_recover`` it may return exactly ``original`` (a truncation that
        only cut bytes the decoder does not need)."""
        try:
            result = call()
        except Exception:  # the contract: decoders raise what the backend raises
            return
        if may_recover and _as_bytes(result) == original:
            return
        pytest.fail(f"decode returned {memoryview(result).nbytes} bytes instead of raising")

    # -- identity and parameters ---------------------------------------------

    def test_name_is_valid(self) -> None:
        assert isinstance(self.codec_class.name, str)
        assert NAME_PATTERN.match(self.codec_class.name)

    def test_registered_under_its_name(self) -> None:
        assert get_codec(self.codec_class.name) is self.codec_class

    def test_level_range_and_chunk_size(self) -> None:
        cls = self.codec_class
        assert cls.min_level <= cls.default_level <= cls.max_level
        assert isinstance(cls.chunk_size, int)
        assert 64 << 10 <= cls.chunk_size <= 256 << 20

    def test_default_level(self) -> None:
        assert self.make_codec().level == self.codec_class.default_level
        assert self.make_codec(level=None) == self.make_codec()

    def test_params_are_stable_json(self) -> None:
        codec = self.make_codec()
        params = codec.params
        assert params == codec.params == self.make_codec().params
        assert json.loads(json.dumps(params)) == params
        assert all(isinstance(key, str) for key in params)

    def test_from_params_rebuilds_an_equal_codec(self) -> None:
        codec = self.make_codec()
        rebuilt = self.codec_class.from_params(json.loads(json.dumps(codec.params)))
        assert type(rebuilt) is self.codec_class
        assert rebuilt == codec
        assert rebuilt.params == codec.params
        assert hash(rebuilt) == hash(codec)

    def test_from_params_refuses_unknown_parameters(self) -> None:
        with pytest.raises(InvalidOptionError):
            self.codec_class.from_params({**self.make_codec().params, "no_such_param": 1})

    def test_invalid_params_are_refused(self) -> None:
        for params in self.invalid_params:
            with pytest.raises(InvalidOptionError):
                self.make_codec(**params)

    def test_every_valid_level_round_trips(self) -> None:
        data = sample_data("smooth", 50_000) + sample_data("random", 5_000)
        for level in self.levels_to_check():
            codec = self.make_codec(level=level)
            assert codec.level == level
            assert codec.params["level"] == level
            self.round_trip(codec, data)

    def test_invalid_levels_are_refused(self) -> None:
        for level in self.levels_to_refuse():
            with pytest.raises(InvalidOptionError):
                self.make_codec(level=level)

    # -- round trips -------------------------------------------------------------

    @pytest.mark.parametrize("buffer_kind", BUFFER_KINDS)
    def test_round_trip_buffer_kinds(self, buffer_kind: str) -> None:
        buffer, itemsize = _buffer_of(buffer_kind, sample_data("smooth", 100_000))
        self.round_trip(self.make_codec(), buffer, itemsize)

    @pytest.mark.parametrize("kind", DATA_KINDS)
    @pytest.mark.parametrize("size", SMALL_SIZES)
    def test_round_trip_sizes(self, kind: str, size: int) -> None:
        self.round_trip(self.make_codec(), sample_data(kind, size))

    @pytest.mark.parametrize("itemsize", [1, 2, 3, 4, 8, 16, 300])
    def test_any_itemsize_hint(self, itemsize: int) -> None:
        # Hints need not divide the chunk size: chunks cut arrays anywhere.
        self.round_trip(self.make_codec(), sample_data("smooth", 10_007), itemsize)
        self.round_trip(self.make_codec(), b"", itemsize)

    @pytest.mark.parametrize("offset", [-1, 0, 1])
    def test_round_trip_around_chunk_size(self, offset: int) -> None:
        level = self.large_size_level
        codec = self.make_codec(level=self.codec_class.min_level if level is None else level)
        size = self.codec_class.chunk_size + offset
        self.round_trip(codec, sample_data("text", size), itemsize=4)

    def test_compressible_data_shrinks(self) -> None:
        data = sample_data("zeros", 1 << 20)
        encoded = self.make_codec().encode(memoryview(data), 1)
        assert memoryview(encoded).nbytes < len(data) // 2

    # -- damage ---------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["smooth", "random"])
    def test_wrong_raw_size_is_refused(self, kind: str) -> None:
        data = sample_data(kind, 20_000)
        codec = self.make_codec()
        encoded = memoryview(codec.encode(memoryview(data), 1)).cast("B")
        for wrong in (0, 1, len(data) - 1, len(data) + 1, 2 * len(data)):
            self.assert_refused(lambda wrong=wrong: codec.decode(encoded, wrong), data)
            self.assert_refused(lambda wrong=wrong: self._decode_into(codec, encoded, wrong), data)

    def test_truncated_input_is_refused(self) -> None:
        data = sample_data("smooth", 20_000)
        codec = self.make_codec()
        encoded = memoryview(codec.encode(memoryview(data), 1)).cast("B")
        for keep in (0, 1, encoded.nbytes // 2, encoded.nbytes - 1):
            self.assert_refused(
                lambda keep=keep: codec.decode(encoded[:keep], len(data)), data, may_recover=True
            )

    def test_trailing_bytes_are_refused(self) -> None:
        data = sample_data("smooth", 20_000)
        codec = self.make_codec()
        encoded = bytes(memoryview(codec.encode(memoryview(data), 1)).cast("B"))
        self.assert_refused(lambda: codec.decode(memoryview(encoded + encoded), len(data)), data)

    @staticmethod
    def _decode_into(codec: Codec, encoded: memoryview, size: int) -> bytearray:
        out = bytearray(size)
        codec.decode_into(encoded, memoryview(out))
        return out

    # -- concurrency ----------------------------------------------------------------

    def test_concurrent_use_of_one_instance(self) -> None:
        codec = self.make_codec()
        inputs = [sample_data(kind, 200_000 + 1_000 * seed, seed)
                  for seed, kind in enumerate(DATA_KINDS * 4)]  # fmt: skip
        barrier = threading.Barrier(8)

        def work(data: bytes) -> bool:
            barrier.wait()  # start together so that calls really overlap
            for _ in range(3):
                encoded = codec.encode(memoryview(data), 4)
                decoded = codec.decode(memoryview(encoded).cast("B"), len(data))
                if _as_bytes(decoded) != data:
                    return False
            return True

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert all(pool.map(work, inputs))

    # -- through codecpickle ---------------------------------------------------------

    def sample_object(self) -> dict[str, Any]:
        """A dict of arrays in several layouts plus plain Python objects."""
        grid = np.linspace(0, 10, 300 * 200).reshape(300, 200)
        return {
            "smooth": np.sin(np.linspace(0, 100, 500_000)).astype(np.float32),
            "ints": np.arange(-100_000, 100_000, dtype=np.int64),
            "fortran": np.asfortranarray(np.cos(grid)),
            "one_chunk_plus": np.zeros(self.codec_class.chunk_size + 3, dtype=np.uint8),
            "empty": np.empty((0, 3), dtype=np.float64),
            "meta": {"name": "model", "values": [1, 2.5, None, "text", b"raw"], "n": 10**30},
            "nested": ({"a": (1, 2)}, frozenset({3, 4})),
        }

    def assert_same_object(self, loaded: Any, original: dict[str, Any]) -> None:
        """Equal keys, equal plain values, arrays equal in dtype, shape and layout."""
        assert loaded.keys() == original.keys()
        for key, value in original.items():
            if isinstance(value, np.ndarray):
                assert loaded[key].dtype == value.dtype
                assert loaded[key].shape == value.shape
                assert loaded[key].flags.f_contiguous == value.flags.f_contiguous
                np.testing.assert_array_equal(loaded[key], value)
            else:
                assert loaded[key] == value

    def test_dumps_loads_round_trip(self) -> None:
        original = self.sample_object()
        data = codecpickle.dumps(original, compress=self.make_codec())
        self.assert_same_object(codecpickle.loads(data), original)

    def test_dump_load_path_round_trip(self, tmp_path: Path) -> None:
        original = self.sample_object()
        path = tmp_path / "object.cpkl"
        codecpickle.dump(original, path, compress=self.make_codec())
        self.assert_same_object(codecpickle.load(path), original)
