"""codecpickle: persist Python objects holding large numerical data.

``dump``/``load`` stream the pickle opcodes and the array payloads through
one chunked, checksummed container and the codec of your choice; ``load``
reads the codec from the file's header.  See the README and ``docs/``.
"""

from ._api import dump, dumps, load, loads
from ._config import config
from ._convert import convert
from ._file import File, open
from ._inspect import Inspection, inspect, untrusted_types
from ._lazy import LazyArray
from ._manifest import VersionMismatchWarning
from ._reseal import reseal
from ._safe import PANDAS_GLOBALS, SAFE_GLOBALS
from ._types import (
    AllowEntry,
    Compress,
    MmapMode,
    PathType,
    ReadableFile,
    SupportsRead,
    SupportsReadinto,
    SupportsWrite,
    WritableFile,
)
from .codecs import (
    Codec,
    CodecInfo,
    available_codecs,
    get_codec,
    register_codec,
)
from .errors import (
    ChecksumMismatchError,
    CodecPickleError,
    CodecRegistrationError,
    CodecUnavailableError,
    CorruptDataError,
    EmptyInputError,
    FileFormatError,
    ForbiddenGlobalError,
    InvalidOptionError,
    NotCodecPickleFileError,
    PickleStreamError,
    SizeLimitError,
    TruncatedFileError,
    UnknownCodecError,
    UnsupportedVersionError,
)

__version__ = "0.1.0"

__all__ = [
    # persistence
    "dump",
    "dumps",
    "load",
    "loads",
    "open",
    "File",
    "LazyArray",
    "convert",
    "config",
    "reseal",
    # types for annotations
    "AllowEntry",
    "Compress",
    "MmapMode",
    "PathType",
    "ReadableFile",
    "SupportsRead",
    "SupportsReadinto",
    "SupportsWrite",
    "WritableFile",
    # looking inside without loading
    "Inspection",
    "inspect",
    "untrusted_types",
    # restricted loading
    "PANDAS_GLOBALS",
    "SAFE_GLOBALS",
    # codecs
    "Codec",
    "CodecInfo",
    "available_codecs",
    "get_codec",
    "register_codec",
    # errors
    "ChecksumMismatchError",
    "CodecPickleError",
    "CodecRegistrationError",
    "CodecUnavailableError",
    "CorruptDataError",
    "EmptyInputError",
    "FileFormatError",
    "ForbiddenGlobalError",
    "InvalidOptionError",
    "NotCodecPickleFileError",
    "PickleStreamError",
    "SizeLimitError",
    "TruncatedFileError",
    "UnknownCodecError",
    "UnsupportedVersionError",
    # warnings
    "VersionMismatchWarning",
    "__version__",
]
