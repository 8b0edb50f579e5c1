"""A reader of CTranslate2 ``model.bin`` files, in numpy, without ctranslate2 installed.

The layout (binary version 6; all integers little-endian):

* ``uint32`` binary version, a string spec name (``WhisperSpec``), ``uint32`` spec revision;
* ``uint32`` variable count, then per variable: string name, ``uint8`` rank, ``rank`` x
  ``uint32`` dimensions, ``uint8`` data type, ``uint32`` byte count, the raw bytes;
* ``uint32`` alias count, then per alias: string alias, string name of the variable it names.

A string is a ``uint16`` length and that many bytes, the last one a NUL. Data types are
CTranslate2's enumeration: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.

A model shipped in parts (a large ``model.bin`` cut into pieces to fit package size limits) is
read from the concatenation of its parts, in order. Reading never executes anything from the
file: it is a sequence of sized arrays.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convai_core.errors import ConvaiError

__all__ = ["Ct2Model", "read_ct2_model", "write_ct2_model"]

#: CTranslate2's data type enumeration.
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}
BFLOAT16 = 5
SUPPORTED_VERSIONS = (5, 6)


@dataclass
class Ct2Model:
    """What a ``model.bin`` holds: the spec's name and revision, its variables and aliases."""

    spec: str
    revision: int
    version: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """A variable by name (aliases followed)."""
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise KeyError(name)
        return self.variables[name]


class _Reader:
    def __init__(self, data: memoryview, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise ConvaiError(
                f"{self.source} is truncated: {what} at byte {self.pos} needs {n} bytes, the "
                f"file has {len(self.data) - self.pos} left. Copy the whole model.bin again "
                "(for a model shipped in parts, give every part, in order)."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def string(self, what: str) -> str:
        (length,) = self.unpack("H", what)
        raw = bytes(self.take(length, what))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise ConvaiError(
                f"{self.source}: {what} at byte {self.pos - length} is not text; this is not a "
                "CTranslate2 model.bin (or it is damaged)."
            ) from None


def read_ct2_model(parts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` (a file, a model folder, or the parts of a split file).

    Float16 and bfloat16 variables are returned as float32; others keep their type.

    Raises:
        ConvaiError: a missing file, a truncated or damaged file, an unsupported binary version
            or data type; the message names the file and the byte offset.
    """
    paths = [Path(parts)] if isinstance(parts, (str, os.PathLike)) else [Path(p) for p in parts]
    if len(paths) == 1 and paths[0].is_dir():
        paths = [paths[0] / "model.bin"]
    for path in paths:
        if not path.is_file():
            raise ConvaiError(
                f"{path} does not exist; give a CTranslate2 model folder or model.bin."
            )
    source = str(paths[0]) if len(paths) == 1 else " + ".join(str(p) for p in paths)
    data = b"".join(p.read_bytes() for p in paths)
    reader = _Reader(memoryview(data), source)
    (version,) = reader.unpack("I", "the binary version")
    if version not in SUPPORTED_VERSIONS:
        raise ConvaiError(
            f"{source}: binary version {version}, which this reader does not know (it reads "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}); "
            + (
                "give the parts of a split model.bin in order (part 1 first)."
                if len(paths) > 1
                else "convert the model again with a CTranslate2 of version 3 or newer."
            )
        )
    spec = reader.string("the spec name")
    (revision,) = reader.unpack("I", "the spec revision")
    (count,) = reader.unpack("I", "the variable count")
    model = Ct2Model(spec=spec, revision=revision, version=version)
    for index in range(count):
        name = reader.string(f"the name of variable {index}")
        (rank,) = reader.unpack("B", f"the rank of {name}")
        dims = reader.unpack("I" * rank, f"the shape of {name}")
        (code,) = reader.unpack("B", f"the data type of {name}")
        (nbytes,) = reader.unpack("I", f"the size of {name}")
        raw = reader.take(nbytes, f"the data of {name}")
        model.variables[name] = _array(raw, code, dims, name, source)
    if reader.pos < len(data):
        (n_alias,) = reader.unpack("I", "the alias count")
        for _ in range(n_alias):
            alias = reader.string("an alias")
            model.aliases[alias] = reader.string(f"the target of alias {alias}")
    if reader.pos != len(data):
        raise ConvaiError(
            f"{source}: {len(data) - reader.pos} bytes follow the last alias; the file is not a "
            "CTranslate2 model.bin, or parts were joined in the wrong order."
        )
    return model


def _array(raw: memoryview, code: int, dims: tuple[int, ...], name: str, source: str) -> np.ndarray:
    size = int(np.prod(dims)) if dims else 1
    if code == BFLOAT16:
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        values = bits.view(np.float32)
    elif code in DTYPES:
        values = np.frombuffer(raw, dtype=DTYPES[code])
    else:
        raise ConvaiError(f"{source}: variable {name} has unknown data type {code}.")
    if values.size != size:
        raise ConvaiError(
            f"{source}: variable {name} has {values.size} values for shape {dims}; the file is "
            "damaged."
        )
    values = values.reshape(dims)
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    return values.copy() if not values.flags.writeable else values


def write_ct2_model(
    path: str | os.PathLike[str],
    spec: str,
    variables: dict[str, np.ndarray],
    *,
    revision: int = 1,
    aliases: dict[str, str] | None = None,
) -> Path:
    """Write variables in the same layout (float32 and float16 kept, other floats as float32).

    For tests and for tools that hand models to CTranslate2; the reverse of
    :func:`read_ct2_model`.
    """
    codes = {np.dtype(v): k for k, v in DTYPES.items()}

    def string(text: str) -> bytes:
        raw = text.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name, value in variables.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and array.dtype not in codes:
            array = array.astype("<f4")
        array = array.astype(array.dtype.newbyteorder("<"))
        code = codes[np.dtype(array.dtype.str.replace(">", "<"))]
        data = array.tobytes()
        out.append(string(name) + struct.pack("<B", array.ndim))
        out.append(struct.pack("<" + "I" * array.ndim, *array.shape))
        out.append(struct.pack("<BI", code, len(data)) + data)
    out.append(struct.pack("<I", len(aliases or {})))
    for alias, name in (aliases or {}).items():
        out.append(string(alias) + string(name))
    written = Path(path)
    written.write_bytes(b"".join(out))
    return written
