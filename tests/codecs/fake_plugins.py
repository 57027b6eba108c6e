"""Fake plugin distributions for registry tests, laid out without installing.

Like numcodecs' ``package_with_entrypoint-0.1.dist-info``: a directory holding
``*.dist-info/METADATA`` and ``entry_points.txt`` next to the plugin modules
is, once on ``sys.path``, an installed distribution to ``importlib.metadata``.
"""

from __future__ import annotations

from pathlib import Path

FAKE_CODEC_MODULE = '''
import zlib

from codecpickle.codecs import Codec


class FakeCodec(Codec):
    """zlib under another name: a stand-in for a real plugin."""

    name = "fake"
    default_level = 1
    min_level = 0
    max_level = 9

    def encode(self, data, itemsize=1):
        return zlib.compress(data, self.level)

    def decode(self, data, raw_size):
        return zlib.decompressobj().decompress(data, raw_size)


class ShadowZstd(FakeCodec):
    name = "zstd"


not_a_codec = object()
'''

BROKEN_CODEC_MODULE = '''
import cpk_test_backend_that_is_not_installed  # fails: the plugin's backend is missing
'''

# (distribution, version, entry points); the modules are importable from the same directory.
FAKE_DISTRIBUTIONS = [
    ("codecpickle-fake", "0.1", {"fake": "cpk_test_fake_plugin:FakeCodec"}),
    ("codecpickle-broken", "0.2", {"broken": "cpk_test_broken_plugin:BrokenCodec"}),
    (
        "codecpickle-odd",
        "0.3",
        {
            "misnamed": "cpk_test_fake_plugin:FakeCodec",
            "notacodec": "cpk_test_fake_plugin:not_a_codec",
        },
    ),
]
#: A plugin trying to take a built-in name; only written when asked for.
SHADOW_DISTRIBUTION = ("codecpickle-shadow", "0.4", {"zstd": "cpk_test_fake_plugin:ShadowZstd"})
FAKE_MODULES = {
    "cpk_test_fake_plugin": FAKE_CODEC_MODULE,
    "cpk_test_broken_plugin": BROKEN_CODEC_MODULE,
}


def write_fake_site(directory: Path, *, shadow: bool = False) -> Path:
    """Lay out installed-looking distributions (``*.dist-info`` with
    ``METADATA`` and ``entry_points.txt``) and their modules in ``directory``,
    as pip would in site-packages, without installing anything."""
    directory.mkdir(parents=True, exist_ok=True)
    for module, source in FAKE_MODULES.items():
        (directory / f"{module}.py").write_text(source)
    for distribution, version, points in [*FAKE_DISTRIBUTIONS, *[SHADOW_DISTRIBUTION] * shadow]:
        info = directory / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        lines = [f"{name} = {target}" for name, target in points.items()]
        (info / "entry_points.txt").write_text("[codecpickle.codecs]\n" + "\n".join(lines) + "\n")
    return directory
