"""The ``asr-bundle`` export target: a folder that convai-asr-runtime transcribes with, no torch.

::

    model.onnx                 the inference graph, written and verified by the registered
                               ``onnx`` export target (convai-export)
    bundle.json                vocabulary, blank, sample rate, frame shift, feature and chunking
                               settings, in convai-asr-runtime's versioned schema
    filterbank.npy, window.npy only when the mel preprocessor is not in the graph (opset < 17,
                               or ``preprocessor=False``): the runtime computes features with numpy
    tokenizer.model            the SentencePiece model, if the model has one

The graph is verified on tensors by the ``onnx`` target, and the bundle end to end: the runtime's
text on real recordings must equal ``model.transcribe``'s. The folder is built beside ``output``
and moved into place only when every check passed.

This module reaches convai-export through the export-target registry only (domain packages do
not import each other); it imports torch only through the model it is given.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convai_core.errors import ExportError

#: The lowest ONNX opset with the STFT operator the mel preprocessor needs inside the graph.
STFT_OPSET = 17
#: The opset used when none is given (the ``onnx`` target's default).
DEFAULT_OPSET = 18
#: The options this target takes (``preprocessor`` and ``verify_audio`` go to ``export_spec``).
OPTIONS = ("opset", "tolerance", "force", "threads", "fp16", "preprocessor", "verify_audio")
GRAPH_FILE = "model.onnx"


@contextlib.contextmanager
def _staged_folder(output: Path, *, force: bool) -> Iterator[Path]:
    """A fresh folder beside ``output`` to build the bundle in; moved onto ``output`` when the
    block ends without error, deleted otherwise."""
    if output.exists() and not force:
        raise ExportError(
            f"{output} already exists; choose another --output or pass --force (force=True) to "
            "replace it"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        yield stage
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)
        elif output.exists() or output.is_symlink():
            output.unlink()
        os.replace(stage, output)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _onnx_target() -> Any:
    from convai_core.registry import get_registries

    targets = get_registries().export_targets
    if "onnx" not in targets:
        raise ExportError(
            "asr-bundle writes its graph with the 'onnx' export target, which convai-export "
            "registers; install it: pip install convai-export"
        )
    return targets.load("onnx")


def default_recordings() -> list[str]:
    """The pocketsphinx-testdata LibriVox recordings, if installed (else an empty list)."""
    from convai_asr.data.pocketsphinx import DATA_DIR

    return [str(p) for p in sorted((DATA_DIR / "librivox").glob("*.wav"))]


def asr_bundle_target(model: Any, output: str | os.PathLike[str], **options: Any) -> Any:
    """Export a CTC model as a bundle for convai-asr-runtime (see the module docstring).

    Args:
        model: a model whose ``export_spec`` describes a CTC recognizer (``task: asr/ctc``)
            and that has ``transcribe``.
        output: the bundle folder to write.
        **options: ``opset`` (default 18; below 17 the features are computed by the runtime),
            ``preprocessor`` (default: in the graph when the opset allows it), ``verify_audio``
            (recordings for both checks; default pocketsphinx-testdata), ``tolerance``,
            ``threads``, ``force``. ``fp16`` is refused: bundles are float32.

    Returns:
        the ``onnx`` target's report, relabelled ``asr-bundle``, listing the bundle's files and
        a note on the end-to-end check.

    Raises:
        ExportError: an unknown option, a model that is not a CTC recognizer, a failed
            verification (tensors or text), or an existing ``output`` without ``force``.
    """
    from convai_asr_runtime.bundle import Bundle
    from convai_asr_runtime.schema import (
        BUNDLE_SCHEMA_VERSION,
        METADATA_FILE,
        BundleError,
        write_metadata,
    )

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ExportError(
            f"export format 'asr-bundle' takes no option(s) {unknown}; it takes {sorted(OPTIONS)}"
        )
    if options.get("fp16"):
        raise ExportError("asr-bundle is float32 only; use --format onnx --fp16 for an fp16 graph")
    opset = int(options.get("opset") or DEFAULT_OPSET)
    preprocessor = options.get("preprocessor")
    if preprocessor is None:
        preprocessor = opset >= STFT_OPSET
    elif preprocessor and opset < STFT_OPSET:
        raise ExportError(
            f"opset {opset} has no STFT, so the mel preprocessor cannot be in the graph; use "
            f"opset >= {STFT_OPSET} or preprocessor=False (the runtime then computes features)"
        )
    not_ctc = ExportError(
        f"asr-bundle holds CTC speech recognizers; {type(model).__name__} is not one (it has no "
        "transcribe, or its export_spec has no asr/ctc metadata). Use --format onnx."
    )
    if not hasattr(model, "transcribe"):
        raise not_ctc
    verify_audio: Sequence[str | os.PathLike[str]] | None = options.get("verify_audio")
    spec_options: dict[str, Any] = {"preprocessor": bool(preprocessor)}
    if verify_audio:
        spec_options["verify_audio"] = list(verify_audio)
    spec = model.export_spec(**spec_options)
    if spec.metadata.get("task") != "asr/ctc":
        raise not_ctc
    onnx_target = _onnx_target()
    graph_options = {
        key: options[key] for key in ("tolerance", "threads") if options.get(key) is not None
    }
    output = Path(output).expanduser()
    written = [GRAPH_FILE, METADATA_FILE]
    with _staged_folder(output, force=bool(options.get("force"))) as folder:
        graph_report = onnx_target(
            model, folder / GRAPH_FILE, opset=opset, **spec_options, **graph_options
        )
        for file_name, source in spec.artifacts.items():
            shutil.copyfile(source, folder / file_name)
            written.append(file_name)
        for name, tensor in spec.arrays.items():
            array = np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)
            np.save(folder / f"{name}.npy", array)
            written.append(f"{name}.npy")
        try:
            write_metadata(folder, {**spec.metadata, "graph": GRAPH_FILE})
        except BundleError as exc:
            raise ExportError(
                f"{type(model).__name__}'s export metadata does not fit bundle schema "
                f"{BUNDLE_SCHEMA_VERSION} of convai-asr-runtime: {exc}"
            ) from exc
        files = [str(p) for p in verify_audio] if verify_audio else default_recordings()
        notes = list(graph_report.notes)
        if files:
            _check_transcripts(model, Bundle(folder, threads=options.get("threads")), files)
            notes.append(
                f"the runtime's text equals model.transcribe on {len(files)} real recordings"
            )
        else:
            notes.append("no real recordings found: end-to-end text check skipped")
    report = copy.copy(graph_report)  # the onnx target's report, with the bundle's files
    report.format = "asr-bundle"
    report.output = output
    report.files = [output / name for name in written]
    report.notes = notes
    return report


def _check_transcripts(model: Any, bundle: Any, files: list[str]) -> None:
    """Raise an :class:`ExportError` listing every file the bundle transcribes differently."""
    expected = model.transcribe(files)
    got = bundle.transcribe(files)
    differ = [
        (t["audio_filepath"], t["text"], r["text"])
        for t, r in zip(expected, got, strict=True)
        if t["text"] != r["text"]
    ]
    if differ:
        lines = "\n".join(f"  {p}: model {a!r} / runtime {b!r}" for p, a, b in differ)
        raise ExportError(
            f"the bundle's runtime transcribes {len(differ)} of {len(files)} files differently "
            f"from the model:\n{lines}\nNothing was written."
        )
