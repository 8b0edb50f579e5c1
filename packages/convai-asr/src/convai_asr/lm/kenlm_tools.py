"""KenLM's ``lmplz`` and ``build_binary``: found on the machine, or built once from the kenlm sdist.

No package ships these two programs (the ``kenlm`` wheel only has the query module), so convai
builds them from the kenlm source distribution on PyPI, checksum-pinned, with cmake and a C++
compiler, into ``$CONVAI_CACHE/kenlm-<version>/bin`` (about a minute on 2 cores, once). The build
needs Debian's ``cmake g++ libboost-program-options-dev libboost-system-dev
libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev``; a missing one is named
in the error. ``$CONVAI_KENLM_BIN`` (a folder) or programs on ``PATH`` are used first.

Run it ahead of time with ``python -m convai_asr.lm.kenlm_tools``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convai_core.errors import ConvaiError
from convai_core.pretrained import cache_dir

__all__ = ["KENLM_VERSION", "KenLMTools", "build_kenlm_tools", "find_kenlm_tools", "kenlm_tools"]

KENLM_VERSION = "0.3.0"
KENLM_SDIST_SHA256 = "c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8"
#: Highest n-gram order the built programs accept (lmplz's compile-time KENLM_MAX_ORDER).
MAX_ORDER = 9
DEBIAN_PACKAGES = (
    "cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev "
    "libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev"
)
_PROGRAMS = ("lmplz", "build_binary")


@dataclass(frozen=True)
class KenLMTools:
    """Paths of the two KenLM programs."""

    lmplz: Path
    build_binary: Path


def _cache_bin() -> Path:
    return cache_dir() / f"kenlm-{KENLM_VERSION}" / "bin"


def find_kenlm_tools() -> KenLMTools | None:
    """The programs from ``$CONVAI_KENLM_BIN``, the convai cache, or ``PATH``; None if absent."""
    folders = [os.environ.get("CONVAI_KENLM_BIN"), str(_cache_bin())]
    for folder in folders:
        if folder and all((Path(folder) / p).is_file() for p in _PROGRAMS):
            return KenLMTools(Path(folder) / "lmplz", Path(folder) / "build_binary")
    found = [shutil.which(p) for p in _PROGRAMS]
    if all(found):
        return KenLMTools(Path(found[0] or ""), Path(found[1] or ""))
    return None


def _run(command: list[str], cwd: Path, step: str, log: Path) -> None:
    with open(log, "ab") as out:
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise ConvaiError(
            f"building KenLM failed at {step} ({' '.join(command)}). The last lines of its log "
            f"({log}):\n{tail}\nThe build needs Debian's {DEBIAN_PACKAGES} (apt-get install "
            "them), or put lmplz and build_binary on PATH / in $CONVAI_KENLM_BIN."
        )


def build_kenlm_tools(
    *, progress: Callable[[str], None] | None = None, sdist: str | os.PathLike[str] | None = None
) -> KenLMTools:
    """Download (or take) the kenlm sdist, check its sha256, build and install the programs.

    Args:
        progress: called with one line per step (default: print to standard error).
        sdist: a local ``kenlm-<version>.tar.gz`` to build instead of downloading it.

    Returns:
        The installed programs (in the convai cache).

    Raises:
        ConvaiError: no compiler or cmake, the download or checksum failed, or the build failed;
            the message says what to install.
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    missing = [tool for tool in ("cmake", "make", "c++") if shutil.which(tool) is None]
    if missing:
        raise ConvaiError(
            f"building KenLM's lmplz and build_binary needs {', '.join(missing)}: install "
            f"Debian's {DEBIAN_PACKAGES} (apt-get install ...), then run the command again."
        )
    target = _cache_bin()
    with tempfile.TemporaryDirectory(prefix="convai-kenlm-") as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "build.log"
        if sdist is None:
            say(f"kenlm: downloading the kenlm {KENLM_VERSION} source distribution")
            # pip prepares an sdist's metadata: without build isolation that takes a second;
            # with it (when this environment has no setuptools) pip installs build wheels first
            command = [
                sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                "kenlm", f"kenlm=={KENLM_VERSION}", "-d", str(tmp),
            ]  # fmt: skip
            try:
                _run([*command, "--no-build-isolation"], tmp, "pip download", log)
            except ConvaiError:
                _run(command, tmp, "pip download", log)
            found = sorted(tmp.glob("kenlm-*.tar.gz"))
            if not found:
                raise ConvaiError(f"pip download kenlm=={KENLM_VERSION} gave no .tar.gz in {tmp}")
            sdist = found[0]
        digest = hashlib.sha256(Path(sdist).read_bytes()).hexdigest()
        if digest != KENLM_SDIST_SHA256:
            raise ConvaiError(
                f"{sdist} has sha256 {digest}, not the pinned {KENLM_SDIST_SHA256} of kenlm "
                f"{KENLM_VERSION}: refusing to build it. Delete it and download it again."
            )
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                archive.extractall(tmp, filter="data")
            else:  # the sdist's checksum was verified above
                archive.extractall(tmp)
        source = next(p for p in tmp.iterdir() if p.is_dir() and p.name.startswith("kenlm"))
        build = source / "build"
        build.mkdir()
        say("kenlm: configuring with cmake (1/2)")
        _run(
            [
                "cmake", "..", "-DCMAKE_BUILD_TYPE=Release", f"-DKENLM_MAX_ORDER={MAX_ORDER}",
                "-DBUILD_TESTING=OFF",
            ],
            build, "cmake", log,
        )  # fmt: skip
        say(f"kenlm: compiling lmplz and build_binary on {os.cpu_count()} cores (2/2, ~1 min)")
        jobs = str(max(1, os.cpu_count() or 1))
        _run(["make", f"-j{jobs}", *_PROGRAMS], build, "make", log)
        staged = target.parent / f".bin-{os.getpid()}"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for program in _PROGRAMS:
            shutil.copy2(build / "bin" / program, staged / program)
        shutil.rmtree(target, ignore_errors=True)
        staged.replace(target)
    say(f"kenlm: installed lmplz and build_binary in {target}")
    return KenLMTools(target / "lmplz", target / "build_binary")


def kenlm_tools(*, progress: Callable[[str], None] | None = None) -> KenLMTools:
    """The programs, building them first when none are found (see the module docstring)."""
    return find_kenlm_tools() or build_kenlm_tools(progress=progress)


if __name__ == "__main__":  # python -m convai_asr.lm.kenlm_tools
    tools = kenlm_tools()
    print(f"lmplz: {tools.lmplz}\nbuild_binary: {tools.build_binary}")
