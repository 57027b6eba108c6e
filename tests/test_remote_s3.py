"""dump and load on s3:// URLs, against a real S3 API server on loopback
(moto's server mode, see tests/s3_server.py): s3fs talks HTTP to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _remote
from codecpickle.errors import (
    CodecPickleError,
    InvalidOptionError,
    StorageNotFoundError,
    StoragePermissionError,
)
from tests.conftest import assert_same
from tests.s3_server import LoopbackS3

MiB = 1 << 20

# Every built-in codec, no codec at all, and the two plugin packages'.
CODECS = [None, "zlib", "gzip", "bz2", "lzma", "lz4", "zstd", "brotli", "blosc2"]


def _sample(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "floats": rng.standard_normal(300_000),
        "ints": np.arange(200_000, dtype=np.int64).reshape(400, 500),
        "fortran": np.asfortranarray(rng.integers(0, 9, size=(300, 70), dtype=np.int16)),
        "strided": np.arange(40_000, dtype=np.float32)[::3],
        "records": [{"id": i, "name": f"row-{i}"} for i in range(2_000)],
        "text": "ünïcode",
    }


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "none")
def test_round_trip_with_every_codec(
    s3_server: LoopbackS3, s3_bucket: str, rng: np.random.Generator, codec: str | None
) -> None:
    assert codec is None or codecpickle.available_codecs()[codec].available
    obj = _sample(rng)
    url = f"s3://{s3_bucket}/objects/{codec}.cpkl"
    options = s3_server.storage_options()
    codecpickle.dump(obj, url, compress=codec, storage_options=options)
    # The object holds exactly the stream dumps() makes, and loads back.
    assert s3_server.get(s3_bucket, f"objects/{codec}.cpkl") == codecpickle.dumps(
        obj, compress=codec
    )
    assert_same(codecpickle.load(url, storage_options=options), obj)


def test_extension_of_the_key_picks_the_codec(s3_server: LoopbackS3, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/model.cpkl.zst"
    codecpickle.dump(np.zeros(1000), url, storage_options=s3_server.storage_options())
    stored = s3_server.get(s3_bucket, "model.cpkl.zst")
    assert stored == codecpickle.dumps(np.zeros(1000), compress="zstd")


def test_overwrite_replaces_the_object(s3_server: LoopbackS3, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/x.cpkl"
    options = s3_server.storage_options()
    codecpickle.dump("old", url, storage_options=options)
    codecpickle.dump("new", url, storage_options=options)
    assert codecpickle.load(url, storage_options=options) == "new"


class _ReadSpy:
    """Records the byte ranges s3fs fetches, as (start, end of the bytes
    received), fetching them as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import s3fs

        self.ranges: list[tuple[int, int]] = []
        original = s3fs.core.S3File._fetch_range

        def fetch_range(file: Any, start: int, end: int) -> bytes:
            data = original(file, start, end)
            self.ranges.append((start, start + len(data)))
            return data

        monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", fetch_range)


@pytest.mark.parametrize("codec", [None, "zstd"], ids=lambda c: c or "none")
def test_large_object_goes_up_in_parts_and_streams_down(
    s3_server: LoopbackS3,
    s3_bucket: str,
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    codec: str | None,
) -> None:
    # 40 MiB of incompressible data in 5 MiB blocks (S3's minimum part size):
    # a multipart upload of parts of 5 to 10 MiB (a block is sent once it is
    # full, with the write that filled it), read back in bounded ranges.
    array = rng.integers(0, 2**63, size=40 * MiB // 8, dtype=np.int64)
    options = s3_server.storage_options(default_block_size=5 * MiB)
    url = f"s3://{s3_bucket}/large.cpkl"
    codecpickle.dump({"a": array}, url, compress=codec, storage_options=options)

    size = s3_server.client.head_object(Bucket=s3_bucket, Key="large.cpkl")["ContentLength"]
    assert size > 40 * MiB
    assert s3_server.part_count(s3_bucket, "large.cpkl") >= 4
    assert s3_server.pending_uploads(s3_bucket) == []

    spy = _ReadSpy(monkeypatch)
    loaded = codecpickle.load(url, storage_options=options)
    np.testing.assert_array_equal(loaded["a"], array)
    # Streamed: many bounded range requests, each byte fetched once (but
    # for the few bytes of the trailer, read first to find the manifest).
    assert len(spy.ranges) >= 4
    assert max(end - start for start, end in spy.ranges) <= 5 * MiB
    assert sum(end - start for start, end in spy.ranges) <= size + (64 << 10), spy.ranges


class _Interrupt:
    """Pickles into an exception after the array before it has been
    uploaded in parts: the dump is interrupted mid-stream."""

    def __init__(self, server: LoopbackS3, bucket: str, error: BaseException) -> None:
        self.server, self.bucket, self.error = server, bucket, error
        self.pending_when_raised: list[dict[str, Any]] = []

    def __reduce__(self) -> Any:
        self.pending_when_raised = self.server.pending_uploads(self.bucket)
        raise self.error


@pytest.mark.parametrize(
    "error", [ValueError("stop mid-stream"), KeyboardInterrupt()], ids=["exception", "interrupt"]
)
def test_interrupted_dump_leaves_no_object_and_aborts_the_upload(
    s3_server: LoopbackS3, s3_bucket: str, rng: np.random.Generator, error: BaseException
) -> None:
    options = s3_server.storage_options(default_block_size=5 * MiB)
    url = f"s3://{s3_bucket}/partial.cpkl"
    interrupt = _Interrupt(s3_server, s3_bucket, error)
    obj = [rng.integers(0, 2**63, size=12 * MiB // 8, dtype=np.int64), interrupt]
    with pytest.raises(type(error)):
        codecpickle.dump(obj, url, storage_options=options)
    # Parts were being uploaded when the dump failed...
    assert len(interrupt.pending_when_raised) == 1
    # ...and none of them became an object; the upload was aborted.
    assert s3_server.keys(s3_bucket) == []
    assert s3_server.pending_uploads(s3_bucket) == []


def test_failed_dump_keeps_the_previous_object(
    s3_server: LoopbackS3, s3_bucket: str, rng: np.random.Generator
) -> None:
    options = s3_server.storage_options(default_block_size=5 * MiB)
    url = f"s3://{s3_bucket}/kept.cpkl"
    codecpickle.dump({"version": 1}, url, storage_options=options)
    interrupt = _Interrupt(s3_server, s3_bucket, ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        codecpickle.dump([rng.random(1_000_000), interrupt], url, storage_options=options)
    assert codecpickle.load(url, storage_options=options) == {"version": 1}
    assert s3_server.pending_uploads(s3_bucket) == []


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import codecpickle

    class Stall:
        def __reduce__(self):
            print("uploading", flush=True)
            time.sleep(120)
            raise SystemExit("not killed")

    endpoint, key, secret, url = sys.argv[1:]
    options = {"key": key, "secret": secret, "endpoint_url": endpoint,
               "client_kwargs": {"region_name": "us-east-1"},
               "default_block_size": 5 << 20}
    array = np.random.default_rng(0).integers(0, 2**63, size=(12 << 20) // 8, dtype=np.int64)
    codecpickle.dump([array, Stall()], url, storage_options=options)
    """
)


def test_killed_dump_leaves_no_object(s3_server: LoopbackS3, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/killed.cpkl"
    options = s3_server.storage_options()
    codecpickle.dump("previous", url, storage_options=options)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WRITER,
            s3_server.endpoint,
            s3_server.key,
            s3_server.secret,
            url,
        ],
        stdout=subprocess.PIPE,
        env=os.environ,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"uploading\n"
        # Mid-upload: parts are stored, but the key still holds the old object.
        assert len(s3_server.pending_uploads(s3_bucket)) == 1
        assert codecpickle.load(url, storage_options=options) == "previous"
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -9
    # Killed before completing the upload: nothing new is visible; the
    # orphaned parts stay invisible (lifecycle rules reclaim them in S3).
    assert codecpickle.load(url, storage_options=options) == "previous"
    assert s3_server.keys(s3_bucket) == ["killed.cpkl"]


def test_missing_key(s3_server: LoopbackS3, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/no/such/key.cpkl"
    with pytest.raises(StorageNotFoundError) as info:
        codecpickle.load(url, storage_options=s3_server.storage_options())
    assert isinstance(info.value, FileNotFoundError)
    assert url in str(info.value)


def test_missing_bucket(s3_server: LoopbackS3) -> None:
    url = "s3://no-such-bucket-here/key.cpkl"
    options = s3_server.storage_options()
    with pytest.raises(StorageNotFoundError, match=re.escape(url)):
        codecpickle.load(url, storage_options=options)
    with pytest.raises(StorageNotFoundError, match=re.escape(url)) as info:
        codecpickle.dump([1, 2, 3], url, storage_options=options)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize(
    "credentials",
    [{"key": "AKIAUNKNOWNKEY000000"}, {"secret": "not-the-right-secret"}],
    ids=["unknown-key", "wrong-secret"],
)
def test_bad_credentials_are_refused_clearly(
    s3_server: LoopbackS3, s3_bucket: str, credentials: dict[str, str]
) -> None:
    url = f"s3://{s3_bucket}/secret.cpkl"
    codecpickle.dump("payload", url, storage_options=s3_server.storage_options())
    bad = s3_server.storage_options(**credentials)
    with pytest.raises(StoragePermissionError) as info:
        codecpickle.load(url, storage_options=bad)
    message = str(info.value)
    assert url in message
    assert "credentials" in message
    assert isinstance(info.value, PermissionError)
    assert isinstance(info.value, CodecPickleError)

    with pytest.raises(StoragePermissionError, match=r"other\.cpkl"):
        codecpickle.dump("overwritten?", f"s3://{s3_bucket}/other.cpkl", storage_options=bad)
    assert s3_server.keys(s3_bucket) == ["secret.cpkl"]
    assert s3_server.pending_uploads(s3_bucket) == []


def test_mmap_mode_on_a_url_warns_and_loads(s3_server: LoopbackS3, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/mapped.cpkl"
    options = s3_server.storage_options()
    codecpickle.dump(np.arange(1000), url, storage_options=options)
    with pytest.warns(UserWarning, match="mmap_mode is ignored: .*mapped.cpkl"):
        loaded = codecpickle.load(url, mmap_mode="r", storage_options=options)
    np.testing.assert_array_equal(loaded, np.arange(1000))


def test_objects_load_one_after_another_from_an_opened_url(
    s3_server: LoopbackS3, s3_bucket: str
) -> None:
    # The file objects load() opens for URLs are seekable fsspec files: other
    # code (random access by index) can use them the same way.
    options = s3_server.storage_options()
    url = f"s3://{s3_bucket}/seek.cpkl"
    codecpickle.dump({"x": np.arange(10)}, url, storage_options=options)
    with _remote.open_for_reading(_remote.RemoteTarget(url, options)) as handle:
        assert handle.seekable()
        assert handle.size == len(s3_server.get(s3_bucket, "seek.cpkl"))
        handle.seek(handle.size - 1)
        last = handle.read(1)
        handle.seek(0)
        assert codecpickle.load(handle)["x"].tolist() == list(range(10))
        assert handle.tell() == handle.size
    assert last == s3_server.get(s3_bucket, "seek.cpkl")[-1:]


def test_storage_options_go_with_urls_only(tmp_path: Any) -> None:
    with pytest.raises(InvalidOptionError, match="storage_options"):
        codecpickle.dump(1, tmp_path / "x.cpkl", storage_options={"anon": True})
    with pytest.raises(InvalidOptionError, match="storage_options"):
        codecpickle.load(tmp_path / "x.cpkl", storage_options={"anon": True})
    with pytest.raises(InvalidOptionError, match="mapping"):
        codecpickle.dump(1, "s3://bucket/key", storage_options="anon")
    assert not (tmp_path / "x.cpkl").exists()


_MEASURE_RSS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import codecpickle

    endpoint, key, secret, url, mode = sys.argv[1:]
    options = {"key": key, "secret": secret, "endpoint_url": endpoint,
               "client_kwargs": {"region_name": "us-east-1"}}
    # Imports, the connection pool and first-use allocations, out of the way.
    codecpickle.dump(np.zeros(1 << 20), url + ".warm", storage_options=options)
    codecpickle.load(url + ".warm", storage_options=options)

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if mode == "dump":
        array = np.random.default_rng(0).random((64 << 20) // 8)
        before = peak_mib()
        codecpickle.dump({"a": array}, url, storage_options=options)
    else:
        before = peak_mib()
        array = codecpickle.load(url, storage_options=options)["a"]
        assert array.nbytes == 64 << 20
    print(peak_mib() - before)
    """
)


@pytest.mark.slow
def test_memory_stays_bounded(s3_server: LoopbackS3, s3_bucket: str) -> None:
    # In a child process, so that the server's memory is not counted: a
    # dump of 64 MiB costs far less than a copy of it, a load about the data
    # itself (DESIGN: <= 64 MiB beyond the object on dump, beyond the loaded
    # data on load).
    url = f"s3://{s3_bucket}/rss.cpkl"
    growth = {}
    for mode in ("dump", "load"):
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURE_RSS,
                s3_server.endpoint,
                s3_server.key,
                s3_server.secret,
                url,
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ,
        )
        assert run.returncode == 0, run.stderr
        growth[mode] = float(run.stdout.split()[-1])
    assert growth["dump"] <= 64, growth
    assert growth["load"] <= 64 + 64, growth


def test_index_of_an_object_is_read_in_a_few_small_ranges(
    s3_server: LoopbackS3, s3_bucket: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Random access over a URL: the file load() and open_input() use is a
    # seekable fsspec file, so the index at the end of a stream is reached
    # by range requests without fetching the payloads.
    from codecpickle._index import read_index

    obj = {"big": rng.random(3 * MiB), "small": np.arange(10)}
    url = f"s3://{s3_bucket}/indexed.cpkl"
    codecpickle.dump(obj, url, compress="lz4", storage_options=s3_server.storage_options())
    size = len(s3_server.get(s3_bucket, "indexed.cpkl"))
    spy = _ReadSpy(monkeypatch)
    small_blocks = s3_server.storage_options(default_block_size=64 << 10)
    with _remote.open_input(url, small_blocks) as handle:
        index = read_index(handle)
    assert index.method == "trailer"
    assert [p.raw_size for p in index.payloads] == [obj["big"].nbytes]  # small: in-band
    assert index.size == size
    assert sum(end - start for start, end in spy.ranges) < 512 << 10 < size // 40


class _RevokeThenFail:
    """Revokes the uploading user's key mid-stream, then fails the dump:
    the upload can then not even be aborted."""

    def __init__(self, server: LoopbackS3, user: str, key: str) -> None:
        self.server, self.user, self.key = server, user, key

    def __reduce__(self) -> Any:
        self.server.iam.delete_access_key(UserName=self.user, AccessKeyId=self.key)
        raise ValueError("failed after the credentials were revoked")


def test_an_upload_that_cannot_be_aborted_is_reported(
    s3_server: LoopbackS3, s3_bucket: str, rng: np.random.Generator
) -> None:
    user, key, secret = s3_server.new_user()
    options = s3_server.storage_options(key=key, secret=secret, default_block_size=5 * MiB)
    url = f"s3://{s3_bucket}/orphan.cpkl"
    obj = [rng.random(1_000_000), _RevokeThenFail(s3_server, user, key)]
    with pytest.raises(ValueError, match="revoked") as info:
        codecpickle.dump(obj, url, storage_options=options)
    # The dump's own error is what the caller gets, with a note that the
    # parts already sent could not be removed.
    (note,) = info.value.__notes__
    assert "could not abort the incomplete upload" in note
    assert "lifecycle" in note
    # Still no object; the orphaned upload is there (removed here).
    assert s3_server.keys(s3_bucket) == []
    (pending,) = s3_server.pending_uploads(s3_bucket)
    s3_server.client.abort_multipart_upload(
        Bucket=s3_bucket, Key="orphan.cpkl", UploadId=pending["UploadId"]
    )
