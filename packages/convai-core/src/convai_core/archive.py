"""The ``.convai`` model archive: one uncompressed POSIX tar file per trained model.

An archive holds these members, and nothing else:

* ``manifest.json``: what the archive is and how to check it::

      {"format": "convai-archive", "format_version": 1, "created": "2025-01-31T12:00:00+00:00",
       "model": "asr/quartznet", "distribution": "convai-asr",
       "versions": {"convai-core": "0.1.0", "convai-asr": "0.1.0", "torch": "2.5.1"},
       "files": {"config.yaml": {"sha256": "...", "size": 1234}, ...},
       ...extra keys passed by the writer...}

  ``files`` lists EVERY other member with its SHA-256 and size. The manifest is written last,
  because it records the checksums of the members before it; readers do not depend on the order.
* ``config.yaml``: the model config, a plain mapping (``yaml.safe_dump``, keys in insertion order).
* ``weights.safetensors``: the state dict in the safetensors format. Weights are never pickled.
* ``artifacts/<name>``: registered files (tokenizer models, vocabularies, LM binaries).

Reading is defensive: the tar structure, every member name and type, the manifest and every
checksum are verified before anything is trusted, members are read with :meth:`tarfile.TarFile.
extractfile` (never ``extract``/``extractall``) and written by this module into the target folder
only, the config is parsed with ``yaml.safe_load`` and the weights with safetensors. Every failure
raises :class:`~convai_core.errors.ArchiveError` naming the archive, the member and what to do.

Importing this module is cheap: torch and safetensors are imported inside the functions that use
them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pathlib
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, cast

import yaml

from convai_core.errors import ArchiveError

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

__all__ = [
    "ARCHIVE_SUFFIX",
    "ARTIFACTS_DIR",
    "CONFIG",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "SUPPORTED_FORMAT_VERSIONS",
    "WEIGHTS",
    "ArchiveContents",
    "read_archive",
    "read_manifest",
    "tar_member_kind",
    "write_archive",
]

ARCHIVE_SUFFIX = ".convai"
MANIFEST, CONFIG, WEIGHTS, ARTIFACTS_DIR = (
    "manifest.json",
    "config.yaml",
    "weights.safetensors",
    "artifacts",
)

FORMAT_NAME = "convai-archive"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = frozenset({1})

#: Keys that :func:`write_archive` sets itself; ``extra_manifest`` may not override them.
_RESERVED_MANIFEST_KEYS = frozenset(
    {"format", "format_version", "created", "model", "distribution", "versions", "files"}
)
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # a manifest is a few KiB; refuse to read a huge one
_MAX_MEMBERS = 10_000  # archives hold a handful of members; stop a tar bomb of headers early
_CHUNK_BYTES = 1024 * 1024
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CORRUPT = "not a valid .convai archive (truncated or corrupt)"
_REBUILD_HINT = "re-download or re-export the model"


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def _artifact_name_problem(name: object) -> str | None:
    """Returns why ``name`` is not a plain artifact file name, or None if it is one."""
    if not isinstance(name, str) or not name:
        return "it is empty or not a string"
    if name in (".", ".."):
        return "it is a relative folder reference"
    if "/" in name or "\\" in name:
        return "it contains a slash or backslash (artifact names are plain file names)"
    if "\0" in name or ":" in name:
        return "it contains a NUL character or a colon"
    return None


def _member_name_problem(name: str) -> str | None:
    """Returns why a tar member name is not allowed in an archive, or None if it is allowed."""
    if not name or "\0" in name:
        return "it is empty or contains a NUL character"
    if "\\" in name:
        return "it contains a backslash"
    if name.startswith("/"):
        return "it is an absolute path"
    if ".." in name.split("/"):
        return "it contains a '..' component"
    if name in (MANIFEST, CONFIG, WEIGHTS, ARTIFACTS_DIR):
        return None
    prefix = ARTIFACTS_DIR + "/"
    if name.startswith(prefix) and _artifact_name_problem(name[len(prefix) :]) is None:
        return None
    return (
        f"it is not one of the known members ({MANIFEST}, {CONFIG}, {WEIGHTS}, "
        f"{ARTIFACTS_DIR}/<plain file name>)"
    )


def tar_member_kind(info: tarfile.TarInfo) -> str:
    """What a tar member that is not a regular file is, in words (for refusals)."""
    if info.issym():
        return "a symbolic link"
    if info.islnk():
        return "a hard link"
    if info.isdir():
        return "a directory"
    if info.ischr() or info.isblk():
        return "a device file"
    if info.isfifo():
        return "a FIFO"
    return f"a tar member of type {info.type!r}"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _create_exclusive(folder: pathlib.Path, prefix: str) -> tuple[int, pathlib.Path]:
    """Creates a new file ``folder/<prefix><random>`` (mode 0o666 minus umask) and opens it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(8)}"
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise ArchiveError(f"could not create a temporary file '{prefix}*' in {folder}")


def _fsync_folder(folder: pathlib.Path, archive: pathlib.Path) -> None:
    """Makes a rename in ``folder`` durable (POSIX only; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise ArchiveError(
            f"wrote {archive} but could not open its folder to fsync it: {exc}"
        ) from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a directory; the archive itself is complete.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise ArchiveError(f"wrote {archive} but could not fsync its folder: {exc}") from exc
    finally:
        os.close(fd)


class _HashingReader:
    """A read-only file wrapper that hashes and counts what :mod:`tarfile` copies out of it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self.sha256.update(chunk)
        self.size += len(chunk)
        return chunk


def _tar_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_bytes(
    tar: tarfile.TarFile, name: str, data: bytes, mtime: float, files: dict[str, Any]
) -> None:
    tar.addfile(_tar_info(name, len(data), mtime), io.BytesIO(data))  # shares, no copy
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _config_bytes(config: Mapping[str, Any]) -> bytes:
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)  # type: ignore[assignment]
    if not isinstance(config, Mapping):
        raise ArchiveError(
            f"config must be a dict, got {type(config).__name__}: pass the model config as a "
            "plain dict (OmegaConf.to_container(cfg, resolve=True) converts a DictConfig)"
        )
    try:
        return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True).encode("utf-8")
    except yaml.YAMLError as exc:
        raise ArchiveError(
            f"config cannot be written as plain YAML ({exc}): it must hold only dicts, lists, "
            "strings, numbers, booleans and None; convert other objects before saving"
        ) from exc


def _weights_bytes(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    import safetensors.torch
    import torch

    if not isinstance(state_dict, Mapping):
        raise ArchiveError(
            f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}: "
            "pass model.state_dict()"
        )
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ArchiveError(f"state_dict key {key!r} is a {type(key).__name__}, not a str")
        if not isinstance(value, torch.Tensor):
            raise ArchiveError(
                f"state_dict[{key!r}] is a {type(value).__name__}, not a torch.Tensor: "
                ".convai archives store tensors only; move other state into the config"
            )
        # A private, dense, contiguous CPU copy: shared (tied) and strided tensors become
        # separate tensors that safetensors accepts.
        try:
            tensors[key] = value.detach().to(device="cpu", copy=True).contiguous()
        except (RuntimeError, NotImplementedError) as exc:
            raise ArchiveError(
                f"state_dict[{key!r}] cannot be copied to the CPU ({exc}): materialise the "
                "model's parameters before saving"
            ) from exc
    try:
        return safetensors.torch.save(tensors)
    except Exception as exc:
        raise ArchiveError(
            f"the state dict cannot be written as safetensors ({exc}): only dense tensors of "
            "standard dtypes can be stored"
        ) from exc


def _installed_versions() -> dict[str, str]:
    """Versions of convai-core, every installed ``convai-*`` distribution and torch."""
    from importlib import metadata

    import torch

    from convai_core import __version__ as core_version

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.name or "").lower()  # PEP 503 normalisation
        if name.startswith("convai-"):
            found.setdefault(name, dist.version)
    versions = {"convai-core": found.pop("convai-core", core_version)}
    versions.update(sorted(found.items()))
    versions["torch"] = str(torch.__version__)
    return versions


def _check_write_arguments(
    path: pathlib.Path,
    model: object,
    distribution: object,
    artifacts: Mapping[str, str | os.PathLike[str]],
    extra_manifest: Mapping[str, Any],
) -> dict[str, pathlib.Path]:
    if not isinstance(model, str) or not model:
        raise ArchiveError(f"model must be a registry key such as 'asr/quartznet', got {model!r}")
    if not isinstance(distribution, str) or not distribution:
        raise ArchiveError(
            f"distribution must name the distribution that provides {model!r} "
            f"(such as 'convai-asr'), got {distribution!r}"
        )
    if not path.parent.is_dir():
        raise ArchiveError(
            f"cannot write archive {path}: folder {path.parent} does not exist; create it first"
        )
    if path.is_dir():
        raise ArchiveError(f"cannot write archive {path}: it is a directory; pass a file path")
    collisions = sorted(set(extra_manifest) & _RESERVED_MANIFEST_KEYS)
    if collisions:
        raise ArchiveError(
            f"extra_manifest sets reserved manifest key(s) {collisions}: write_archive sets "
            f"{sorted(_RESERVED_MANIFEST_KEYS)} itself; rename your keys"
        )
    sources: dict[str, pathlib.Path] = {}
    for name, source in artifacts.items():
        problem = _artifact_name_problem(name)
        if problem is not None:
            raise ArchiveError(
                f"artifact name {name!r} is not allowed because {problem}: use the file's base "
                "name, such as 'tokenizer.model'"
            )
        source_path = pathlib.Path(source)
        if not source_path.is_file():
            raise ArchiveError(
                f"artifact {name!r}: source file {source_path} does not exist or is not a "
                "regular file; check the path registered for it"
            )
        sources[name] = source_path
    return sources


def write_archive(
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    model: str,
    distribution: str,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
) -> pathlib.Path:
    """Writes a model to a ``.convai`` archive, atomically.

    The archive is written to ``'<path>.tmp-<random>'`` in the same folder, flushed and fsynced,
    moved onto ``path`` with :func:`os.replace`, and the folder is fsynced. On any error the
    temporary file is removed and a file already at ``path`` is left untouched.

    Args:
        path: Where to write the archive (by convention its name ends with :data:`ARCHIVE_SUFFIX`).
            Its folder must exist.
        config: The model config as a plain dict (an OmegaConf ``DictConfig`` is converted with
            ``resolve=True``), written with ``yaml.safe_dump``.
        state_dict: Parameter and buffer names mapped to tensors. Every tensor is copied to a
            contiguous CPU tensor; tensors that share storage (tied weights) are stored
            separately, each under its own key.
        model: The registry key of the model, such as ``"asr/quartznet"``.
        distribution: The distribution that provides ``model``, such as ``"convai-asr"``.
        artifacts: Artifact file names mapped to source files; each is stored as member
            ``artifacts/<name>``. Names are plain file names (no slashes).
        extra_manifest: More JSON-serialisable keys for ``manifest.json``; they may not override
            the keys this function sets.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ArchiveError: An argument is invalid (the message names it) or the file cannot be written.
    """
    path = pathlib.Path(path)
    extra = dict(extra_manifest or {})
    sources = _check_write_arguments(path, model, distribution, artifacts or {}, extra)
    config_data = _config_bytes(config)

    created = datetime.now(timezone.utc).replace(microsecond=0)
    mtime = created.timestamp()
    fd, tmp_path = _create_exclusive(path.parent, f"{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                files: dict[str, Any] = {}
                _add_bytes(tar, CONFIG, config_data, mtime, files)
                _add_bytes(tar, WEIGHTS, _weights_bytes(state_dict), mtime, files)
                for name, source in sources.items():
                    member = f"{ARTIFACTS_DIR}/{name}"
                    with open(source, "rb") as handle:
                        reader = _HashingReader(handle)
                        size = os.fstat(handle.fileno()).st_size
                        tar.addfile(_tar_info(member, size, mtime), cast("IO[bytes]", reader))
                    files[member] = {"sha256": reader.sha256.hexdigest(), "size": reader.size}
                manifest = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "created": created.isoformat(),
                    "model": model,
                    "distribution": distribution,
                    "versions": _installed_versions(),
                    "files": files,
                    **extra,
                }
                try:
                    manifest_data = (
                        json.dumps(manifest, indent=2, allow_nan=False) + "\n"
                    ).encode()
                except (TypeError, ValueError) as exc:
                    raise ArchiveError(
                        f"extra_manifest cannot be written as JSON ({exc}): use only dicts, "
                        "lists, strings, finite numbers, booleans and None"
                    ) from exc
                _add_bytes(tar, MANIFEST, manifest_data, mtime, {})
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, (OSError, tarfile.TarError)):
            raise ArchiveError(f"could not write archive {path}: {exc}") from exc
        raise
    _fsync_folder(path.parent, path)
    return path


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class ArchiveContents:
    """What :func:`read_archive` returns.

    Attributes:
        manifest: The parsed ``manifest.json``.
        config: The model config (a plain dict).
        state_dict: Parameter and buffer names mapped to tensors on ``map_location``.
        artifact_dir: The folder holding the extracted artifacts, or None if the archive has none.
        path: The archive these contents were read from.
    """

    manifest: dict[str, Any]
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    artifact_dir: pathlib.Path | None
    path: pathlib.Path | None = None

    @property
    def artifact_names(self) -> list[str]:
        """Names of the artifacts in the archive, in manifest order."""
        prefix = ARTIFACTS_DIR + "/"
        return [name[len(prefix) :] for name in self.manifest["files"] if name.startswith(prefix)]

    def artifact_path(self, name: str) -> pathlib.Path:
        """Returns the path of the extracted artifact ``name``.

        Raises:
            ArchiveError: The archive holds no artifact of that name.
        """
        names = self.artifact_names
        if name not in names or self.artifact_dir is None:
            raise ArchiveError(
                f"archive {self.path or '<unknown>'} has no artifact {name!r}; it holds "
                f"{names or 'no artifacts'}"
            )
        return self.artifact_dir / name


def _corrupt(path: pathlib.Path, detail: object) -> ArchiveError:
    return ArchiveError(f"{path}: {_CORRUPT}: {detail}; {_REBUILD_HINT}")


def _open_tar(path: pathlib.Path) -> tarfile.TarFile:
    if not path.exists():
        raise ArchiveError(f"archive {path} does not exist; check the path")
    if not path.is_file():
        raise ArchiveError(f"archive {path} is not a regular file; pass the .convai file's path")
    if path.stat().st_size == 0:
        raise _corrupt(path, "the file is empty (0 bytes)")
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _corrupt(path, exc) from exc


def _scan_members(path: pathlib.Path, tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Reads every header and checks every member's name and type; returns the files by name."""
    members: dict[str, tarfile.TarInfo] = {}
    seen: set[str] = set()
    count = 0
    try:
        for info in tar:
            count += 1
            if count > _MAX_MEMBERS:
                raise ArchiveError(
                    f"{path}: more than {_MAX_MEMBERS} members; a .convai archive holds a "
                    "manifest, a config, weights and a few artifacts. Refusing to read it"
                )
            name = info.name
            problem = _member_name_problem(name)
            if problem is not None:
                raise ArchiveError(
                    f"{path}: unsafe or unknown member {name!r} refused because {problem}; "
                    f"the archive was not written by convai or was tampered with. {_REBUILD_HINT}"
                )
            if name in seen:
                raise ArchiveError(
                    f"{path}: member {name!r} appears more than once; the archive was modified "
                    f"or corrupted. {_REBUILD_HINT}"
                )
            seen.add(name)
            if name == ARTIFACTS_DIR and info.isdir():
                continue
            if not info.isreg():
                raise ArchiveError(
                    f"{path}: member {name!r} is {tar_member_kind(info)}; .convai archives hold "
                    f"only regular files. Refusing to read it; {_REBUILD_HINT}"
                )
            members[name] = info
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _corrupt(path, exc) from exc
    if not members:
        raise _corrupt(path, "the tar file holds no members")
    return members


def _stream_member(
    path: pathlib.Path,
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    size: int,
    sink: Callable[[bytes], object] | None,
) -> str:
    """Reads a member in chunks, never more than ``size`` bytes, and returns its SHA-256.

    Raises:
        ArchiveError: The member does not hold exactly ``size`` bytes, or the tar file is cut.
    """
    name = info.name
    if info.size != size:
        raise _mismatch(path, name, f"{size} bytes expected, the tar header says {info.size}")
    digest = hashlib.sha256()
    remaining = size
    try:
        handle = tar.extractfile(info)
        if handle is None:  # _scan_members admits regular files only
            raise ArchiveError(f"{path}: member {name!r} has no data; {_REBUILD_HINT}")
        with handle:
            while True:
                chunk = handle.read(min(_CHUNK_BYTES, remaining + 1))
                if not chunk:
                    break
                remaining -= len(chunk)
                if remaining < 0:
                    raise _mismatch(path, name, f"more data than the {size} bytes expected")
                digest.update(chunk)
                if sink is not None:
                    sink(chunk)
    except (tarfile.TarError, EOFError) as exc:
        raise _corrupt(path, f"member {name}: {exc}") from exc
    if remaining:
        raise _mismatch(path, name, f"{size - remaining} bytes instead of {size}")
    return digest.hexdigest()


def _mismatch(path: pathlib.Path, name: str, detail: str) -> ArchiveError:
    return ArchiveError(
        f"{path}: checksum mismatch for member {name}: the archive was modified or corrupted "
        f"({detail}). {_REBUILD_HINT}"
    )


def _verify_member(
    path: pathlib.Path,
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    entry: Mapping[str, Any],
    sink: Callable[[bytes], object] | None,
) -> None:
    """Streams a member into ``sink`` and checks it against its manifest ``entry``."""
    if _stream_member(path, tar, info, entry["size"], sink) != entry["sha256"]:
        raise _mismatch(path, info.name, f"its SHA-256 differs from {MANIFEST}")


def _read_verified(
    path: pathlib.Path, tar: tarfile.TarFile, info: tarfile.TarInfo, entry: Mapping[str, Any]
) -> bytes:
    chunks: list[bytes] = []
    _verify_member(path, tar, info, entry, chunks.append)
    return b"".join(chunks)


def _check_manifest(path: pathlib.Path, manifest: object) -> dict[str, Any]:
    def bad(detail: str) -> ArchiveError:
        return ArchiveError(
            f"{path}: invalid {MANIFEST}: {detail}; the archive was not written by convai or "
            f"was modified. {_REBUILD_HINT}"
        )

    if not isinstance(manifest, dict):
        raise bad(f"expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT_NAME:
        raise bad(f"'format' is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad(f"'format_version' is {version!r}, expected an integer")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArchiveError(
            f"{path}: format_version {version} is not supported; this convai-core reads "
            f"format_version {sorted(SUPPORTED_FORMAT_VERSIONS)}. Upgrade convai-core to read "
            "archives written by a newer release"
        )
    for key in ("model", "distribution", "created"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise bad(f"{key!r} is missing or not a non-empty string")
    if not isinstance(manifest.get("versions"), dict):
        raise bad("'versions' is missing or not an object")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise bad("'files' is missing or not an object")
    for name, entry in files.items():
        problem = _member_name_problem(name)
        if problem is not None or name in (MANIFEST, ARTIFACTS_DIR):
            raise bad(f"'files' lists {name!r}, which is not a member an archive may hold")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256_RE.match(entry["sha256"])
            or not isinstance(entry.get("size"), int)
            or isinstance(entry.get("size"), bool)
            or entry["size"] < 0
        ):
            raise bad(
                f"'files'[{name!r}] must be {{'sha256': <64 lowercase hex digits>, "
                f"'size': <bytes>}}, got {entry!r}"
            )
    for required in (CONFIG, WEIGHTS):
        if required not in files:
            raise bad(f"'files' does not list {required}")
    return manifest


def _open_verified(
    path: pathlib.Path,
) -> tuple[tarfile.TarFile, dict[str, Any], dict[str, tarfile.TarInfo]]:
    """Opens an archive, checks its structure and manifest; the caller closes the tar file."""
    tar = _open_tar(path)
    try:
        members = _scan_members(path, tar)
        info = members.pop(MANIFEST, None)
        if info is None:
            raise _corrupt(path, f"no {MANIFEST} member")
        if info.size > _MAX_MANIFEST_BYTES:
            raise ArchiveError(
                f"{path}: {MANIFEST} is {info.size} bytes, more than the "
                f"{_MAX_MANIFEST_BYTES} a manifest may have; refusing to read it. {_REBUILD_HINT}"
            )
        chunks: list[bytes] = []
        _stream_member(path, tar, info, info.size, chunks.append)  # it has no checksum itself
        try:
            manifest = json.loads(b"".join(chunks).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchiveError(
                f"{path}: {MANIFEST} is not valid JSON ({exc}); the archive was modified or "
                f"corrupted. {_REBUILD_HINT}"
            ) from exc
        manifest = _check_manifest(path, manifest)
        listed = set(manifest["files"])
        unlisted = sorted(set(members) - listed)
        if unlisted:
            raise ArchiveError(
                f"{path}: member {unlisted[0]!r} is not listed in {MANIFEST}; unknown members "
                f"are refused because the archive was modified. {_REBUILD_HINT}"
            )
        missing = sorted(listed - set(members))
        if missing:
            raise ArchiveError(
                f"{path}: member {missing[0]!r} is listed in {MANIFEST} but missing from the "
                f"archive; it is truncated or was modified. {_REBUILD_HINT}"
            )
    except BaseException:
        tar.close()
        raise
    return tar, manifest, members


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads the manifest of an archive after verifying the archive.

    Checks the tar structure, every member's name and type, the manifest, and the size and
    SHA-256 of every member. It streams the members to hash them but parses neither the config
    nor the weights.

    Args:
        path: The ``.convai`` file.

    Returns:
        The parsed ``manifest.json``.

    Raises:
        ArchiveError: The archive is missing, truncated, corrupt, tampered with or unsafe.
    """
    path = pathlib.Path(path)
    tar, manifest, members = _open_verified(path)
    with tar:
        for name, info in members.items():
            _verify_member(path, tar, info, manifest["files"][name], None)
    return manifest


def _load_config(path: pathlib.Path, data: bytes) -> dict[str, Any]:
    try:
        config = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ArchiveError(
            f"{path}: member {CONFIG} is not plain YAML ({exc}); only plain YAML is loaded "
            f"(yaml.safe_load). {_REBUILD_HINT}"
        ) from exc
    if not isinstance(config, dict):
        raise ArchiveError(
            f"{path}: member {CONFIG} holds a {type(config).__name__}, expected a mapping. "
            f"{_REBUILD_HINT}"
        )
    return config


def _load_weights(path: pathlib.Path, data: bytes, device: Any) -> dict[str, torch.Tensor]:
    import safetensors.torch

    try:
        tensors = safetensors.torch.load(data)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # includes pyo3's PanicException, which is no Exception
        raise ArchiveError(
            f"{path}: member {WEIGHTS} is not a valid safetensors file ({exc}); .convai archives "
            f"never load pickled weights. {_REBUILD_HINT}"
        ) from exc
    if device.type == "cpu":
        return dict(tensors)
    return {key: tensor.to(device) for key, tensor in tensors.items()}


def _extract_artifact(
    path: pathlib.Path,
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    entry: Mapping[str, Any],
    target_dir: pathlib.Path,
    written: list[pathlib.Path],
) -> None:
    """Streams a verified artifact to ``target_dir/<name>`` through a temporary file."""
    name = info.name[len(ARTIFACTS_DIR) + 1 :]
    target = target_dir / name  # name is a plain file name: the target stays in target_dir
    fd, partial = _create_exclusive(target_dir, f".{name}.partial-")
    written.append(partial)
    try:
        with os.fdopen(fd, "wb") as out:
            _verify_member(path, tar, info, entry, out.write)
        os.replace(partial, target)  # replaces a symlink at target, never follows it
    except OSError as exc:
        raise ArchiveError(
            f"{path}: cannot extract member {info.name} to {target}: {exc}; free some space or "
            "pass another extract_dir"
        ) from exc
    written.append(target)


def read_archive(
    path: str | os.PathLike[str],
    *,
    extract_dir: str | os.PathLike[str] | None = None,
    map_location: str = "cpu",
) -> ArchiveContents:
    """Reads and verifies a ``.convai`` archive.

    Every member's name, type, size and SHA-256 is checked against the manifest; the config is
    loaded with ``yaml.safe_load`` and the weights with safetensors (never pickle). Artifacts are
    streamed into ``extract_dir``; nothing is written outside it. On failure the files this call
    wrote are removed again.

    Args:
        path: The ``.convai`` file.
        extract_dir: Folder to extract the artifacts into (created if missing). By default a
            fresh ``tempfile.mkdtemp(prefix="convai-archive-")`` folder that is NOT removed: it
            lives as long as the process needs the artifacts, and the caller may delete it.
            Nothing is created when the archive has no artifacts.
        map_location: The device to load the tensors on, such as ``"cpu"`` or ``"cuda:0"``.

    Returns:
        The manifest, config, state dict and the folder holding the artifacts.

    Raises:
        ArchiveError: The archive is missing, truncated, corrupt, tampered with or unsafe, or
            ``map_location`` is not a device.
    """
    import torch

    path = pathlib.Path(path)
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError) as exc:
        raise ArchiveError(
            f"cannot read {path}: map_location={map_location!r} is not a torch device ({exc}); "
            "pass 'cpu', 'cuda' or 'cuda:0'"
        ) from exc

    tar, manifest, members = _open_verified(path)
    artifact_members = [name for name in members if name.startswith(ARTIFACTS_DIR + "/")]
    written: list[pathlib.Path] = []
    created_dir: pathlib.Path | None = None
    target_dir: pathlib.Path | None = None
    try:
        with tar:
            files = manifest["files"]
            config = _load_config(path, _read_verified(path, tar, members[CONFIG], files[CONFIG]))
            weights_data = _read_verified(path, tar, members[WEIGHTS], files[WEIGHTS])
            state_dict = _load_weights(path, weights_data, device)
            del weights_data
            if artifact_members:
                if extract_dir is None:
                    target_dir = created_dir = pathlib.Path(
                        tempfile.mkdtemp(prefix="convai-archive-")
                    )
                else:
                    target_dir = pathlib.Path(extract_dir)
                    if not target_dir.exists():
                        try:
                            target_dir.mkdir(parents=True)
                        except OSError as exc:
                            raise ArchiveError(
                                f"cannot read {path}: cannot create extract_dir {target_dir} "
                                f"({exc}); pass a writable folder"
                            ) from exc
                        created_dir = target_dir
                    elif not target_dir.is_dir():
                        raise ArchiveError(
                            f"cannot read {path}: extract_dir {target_dir} is not a folder"
                        )
                for name in artifact_members:
                    _extract_artifact(path, tar, members[name], files[name], target_dir, written)
    except BaseException:
        for file in reversed(written):
            file.unlink(missing_ok=True)
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)
        raise
    return ArchiveContents(
        manifest=manifest,
        config=config,
        state_dict=state_dict,
        artifact_dir=target_dir,
        path=path,
    )
