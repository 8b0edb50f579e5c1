"""Resolving pretrained model names to verified local ``.convai`` files.

Names come from the catalog filled by ``convai_register_pretrained`` hooks. A location is a local
path, a ``file://`` URL or an ``http(s)://`` URL. Downloads go to the cache folder
(``CONVAI_CACHE``, default ``~/.cache/convai``) through a temporary file and an atomic rename; the
sha256 is checked after every download and before every load, so a cached file that was damaged
is fetched again (or reported, offline).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from convai_core.errors import PretrainedError

if TYPE_CHECKING:
    from convai_core.registry import Entry, Registries

DOWNLOAD_TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """The pretrained-model cache folder: ``$CONVAI_CACHE`` or ``~/.cache/convai``."""
    return Path(os.environ.get("CONVAI_CACHE") or Path.home() / ".cache" / "convai").expanduser()


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cached_path(entry: Entry, directory: Path | None = None) -> Path:
    """Where the archive of ``entry`` lives in the cache."""
    safe = entry.key.replace("/", "__")
    return (directory or cache_dir()) / safe / f"{entry.metadata['sha256'][:16]}.convai"


def resolve_entry(entry: Entry, directory: Path | None = None) -> Path:
    """Return a verified local file for a catalog entry, downloading it when needed."""
    expected = str(entry.metadata["sha256"])
    location = entry.target
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        local = Path(
            urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else location
        )
        local = local.expanduser()
        if not local.is_file():
            raise PretrainedError(
                f"Pretrained model {entry.key!r} (registered by {entry.provenance}) points to "
                f"{local}, which does not exist. Reinstall {entry.provenance.distribution} or put "
                f"the file there."
            )
        _verify(local, expected, entry.key)
        return local
    target = cached_path(entry, directory)
    if target.is_file():
        if sha256_of(target) == expected:
            return target
        target.unlink()  # damaged cache entry: fetch again
    _download(location, target, entry.key)
    _verify(target, expected, entry.key, remove=True)
    return target


def _verify(path: Path, expected: str, name: str, *, remove: bool = False) -> None:
    actual = sha256_of(path)
    if actual != expected:
        if remove:
            path.unlink(missing_ok=True)
        raise PretrainedError(
            f"Checksum mismatch for pretrained model {name!r} at {path}: expected sha256 "
            f"{expected}, got {actual}. The file is damaged or not the registered release; "
            f"delete it and download it again."
        )


def _download(url: str, target: Path, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=target.parent)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as src,
        ):
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise PretrainedError(
            f"Pretrained model {name!r} is not in the cache ({target}) and downloading it from "
            f"{url} failed: {exc}. When offline, copy the .convai file to {target} (or set "
            f"CONVAI_CACHE to a folder that has it), or restore it from a local file with "
            f"restore_from(path)."
        ) from exc


def resolve_pretrained(name: str, *, registries: Registries | None = None) -> Path:
    """Resolve ``name`` through the ``convai_resolve_pretrained`` hook (the catalog by default).

    A name that is an existing ``.convai`` file path is returned as is.
    """
    if name.endswith(".convai") and Path(name).expanduser().is_file():
        return Path(name).expanduser()
    from convai_core.plugins import load_plugins

    loaded = load_plugins()
    result = loaded.manager.hook.convai_resolve_pretrained(name=name, cache_dir=str(cache_dir()))
    if result is None:
        regs = registries or loaded.registries
        known = ", ".join(regs.pretrained.keys()) or "none installed"
        raise PretrainedError(
            f"No pretrained model named {name!r}. Known names: {known}. `convai models` lists "
            f"them; a package that is not installed may provide more."
        )
    return Path(result)
