"""The versioned schema of a bundle's metadata file, ``bundle.json``, owned by this runtime.

Exporters (``convai export --format asr-bundle``, implemented in convai-asr) write the file with
:func:`write_metadata`, which validates it with the same code :class:`~convai_asr_runtime.Bundle`
loads it with: an exporter cannot write a bundle that this runtime would refuse.

``bundle.json``, schema 1::

    schema_version         int      the BUNDLE_SCHEMA_VERSION of the writer
    graph                  str      file name of the ONNX graph in the bundle ("model.onnx")
    sample_rate            int      Hz of the audio the graph expects
    tokens                 [str]    the vocabulary (the graph's outputs, blank excepted)
    blank_id               int      the CTC blank's index among the graph's outputs
    tokenizer              str      "char" or "sentencepiece": how tokens join into text
    frame_shift_s          float    seconds between two output frames
    includes_preprocessor  bool     the graph takes waveforms (else log-mel features, computed
                                    with numpy from filterbank.npy and window.npy)
    preprocessor           {...}    feature settings (n_fft, hop_length, win_length, preemph,
                                    log, log_zero_guard, normalize, pad_to, mag_power, and
                                    from schema 2 count_last_frame); needed when
                                    includes_preprocessor is false
    transcribe             {...}    optional: chunk_seconds and overlap_seconds for long files
    tokenizer_model        str      optional: the SentencePiece model's file name in the bundle

Other keys (``model``, ``task``...) are kept and ignored. Keys may be added within a schema
version as long as older runtimes of that version can ignore them; anything a runtime must
understand bumps :data:`BUNDLE_SCHEMA_VERSION`, and a runtime refuses bundles newer than it with
an error that says to upgrade. Bundles written before the runtime became its own distribution
(by convai-export's former ``asr-bundle`` target) carry ``"bundle_format": 1`` instead of
``schema_version``; they hold the same keys and load as schema 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLE_SCHEMA_VERSION",
    "FILTERBANK_FILE",
    "METADATA_FILE",
    "TOKENIZER_KINDS",
    "WINDOW_FILE",
    "BundleError",
    "BundleSettings",
    "FeatureSettings",
    "read_metadata",
    "write_metadata",
]

#: The newest ``schema_version`` of ``bundle.json`` this runtime reads. Writers give a bundle the
#: oldest version that describes it, so older runtimes keep reading what they can compute:
#: version 2 adds ``preprocessor.count_last_frame: false`` (features of ``length // hop``
#: frames, as NeMo 3 computes them), and only bundles that need it say 2.
BUNDLE_SCHEMA_VERSION = 2
#: The metadata file of a bundle.
METADATA_FILE = "bundle.json"
#: The mel filterbank and STFT window, saved when the features are computed outside the graph.
FILTERBANK_FILE = "filterbank.npy"
WINDOW_FILE = "window.npy"
#: How token strings join into text (see :mod:`convai_asr_runtime.decode`).
TOKENIZER_KINDS = ("char", "sentencepiece")
#: Feature normalizations :func:`~convai_asr_runtime.features.mel_features` implements.
NORMALIZE_MODES = (None, "per_feature", "all_features")
_LEGACY_VERSION_KEY = "bundle_format"  # bundles of convai-export's former asr-bundle target


class BundleError(ValueError):
    """A bundle cannot be used: its metadata is missing, malformed or from a newer schema, or a
    file it names is missing. The message names the file (and the key)."""


@dataclass(frozen=True)
class FeatureSettings:
    """Log-mel feature settings, for graphs that start from features (see
    :func:`~convai_asr_runtime.features.mel_features`)."""

    n_fft: int
    hop_length: int
    win_length: int
    preemph: float | None
    log: bool
    log_zero_guard: float
    normalize: str | None
    pad_to: int
    mag_power: float
    count_last_frame: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The settings as the plain mapping ``mel_features`` takes."""
        return asdict(self)


@dataclass(frozen=True)
class BundleSettings:
    """The validated content of ``bundle.json`` (see the module docstring for each key)."""

    schema_version: int
    graph: str
    sample_rate: int
    tokens: tuple[str, ...]
    blank_id: int
    tokenizer: str
    frame_shift_s: float
    includes_preprocessor: bool
    features: FeatureSettings | None
    chunk_seconds: float = 30.0
    overlap_seconds: float = 4.0
    tokenizer_model: str | None = None

    @classmethod
    def from_json(cls, meta: Any, source: str | os.PathLike[str]) -> BundleSettings:
        """Validate the parsed content of a ``bundle.json``.

        Args:
            meta: the parsed JSON.
            source: the file it came from, named in errors.

        Raises:
            BundleError: a key is missing or has the wrong type or value, or the schema
                is newer than :data:`BUNDLE_SCHEMA_VERSION`.
        """
        where = str(source)
        if not isinstance(meta, Mapping):
            raise BundleError(
                f"{where}: the metadata must be a JSON object, not {type(meta).__name__}"
            )
        version = _schema_version(meta, where)
        includes = _get(meta, "includes_preprocessor", bool, where)
        tokens = _get(meta, "tokens", list, where)
        for index, token in enumerate(tokens):
            if not isinstance(token, str):
                raise BundleError(
                    f"{where}: key 'tokens' item {index} must be a string, got {token!r}"
                )
        blank_id = _get(meta, "blank_id", int, where)
        if not 0 <= blank_id <= len(tokens):
            raise BundleError(
                f"{where}: key 'blank_id' is {blank_id}; it must lie in 0..{len(tokens)} "
                f"(the vocabulary has {len(tokens)} tokens)"
            )
        tokenizer = _get(meta, "tokenizer", str, where)
        if tokenizer not in TOKENIZER_KINDS:
            raise BundleError(
                f"{where}: key 'tokenizer' is {tokenizer!r}; this runtime knows "
                f"{', '.join(TOKENIZER_KINDS)} (upgrade convai-asr-runtime if the bundle is newer)"
            )
        sample_rate = _get(meta, "sample_rate", int, where)
        frame_shift = _get(meta, "frame_shift_s", float, where)
        if sample_rate <= 0 or frame_shift <= 0:
            raise BundleError(
                f"{where}: keys 'sample_rate' ({sample_rate}) and 'frame_shift_s' "
                f"({frame_shift}) must be positive"
            )
        features = None
        if "preprocessor" in meta or not includes:
            features = _features(_get(meta, "preprocessor", dict, where), where)
        chunk, overlap = 30.0, 4.0  # the defaults of model.transcribe
        if "transcribe" in meta:
            section = _get(meta, "transcribe", dict, where)
            chunk = _get(section, "chunk_seconds", float, where, "transcribe.")
            overlap = _get(section, "overlap_seconds", float, where, "transcribe.")
            if not 0 <= overlap < chunk:
                raise BundleError(
                    f"{where}: key 'transcribe.overlap_seconds' ({overlap}) must be at least 0 "
                    f"and below 'transcribe.chunk_seconds' ({chunk})"
                )
        tokenizer_model = None
        if "tokenizer_model" in meta:
            tokenizer_model = _file_name(meta, "tokenizer_model", where)
        return cls(
            schema_version=version,
            graph=_file_name(meta, "graph", where),
            sample_rate=sample_rate,
            tokens=tuple(tokens),
            blank_id=blank_id,
            tokenizer=tokenizer,
            frame_shift_s=frame_shift,
            includes_preprocessor=includes,
            features=features,
            chunk_seconds=chunk,
            overlap_seconds=overlap,
            tokenizer_model=tokenizer_model,
        )

    def required_files(self) -> list[str]:
        """The files of the bundle folder these settings refer to."""
        files = [self.graph]
        if not self.includes_preprocessor:
            files += [FILTERBANK_FILE, WINDOW_FILE]
        if self.tokenizer_model:
            files.append(self.tokenizer_model)
        return files


def read_metadata(folder: str | os.PathLike[str]) -> BundleSettings:
    """Read and validate ``<folder>/bundle.json`` and check that the files it names exist.

    Raises:
        BundleError: the folder has no ``bundle.json``, the file is not valid JSON or
            fails validation, or a file it names is missing.
    """
    folder = Path(folder)
    path = folder / METADATA_FILE
    if not path.is_file():
        raise BundleError(
            f"{folder} is not an ASR bundle: it has no {METADATA_FILE}; export one with "
            "`convai export --format asr-bundle` (convai-asr)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc}); re-export the bundle") from exc
    settings = BundleSettings.from_json(meta, path)
    _check_files(settings, folder, path)
    return settings


def write_metadata(folder: str | os.PathLike[str], meta: Mapping[str, Any]) -> BundleSettings:
    """Validate ``meta`` and write it as ``<folder>/bundle.json`` (the oldest schema version
    that describes it: 2 when the runtime computes features that leave out the last frame,
    else 1).

    The files it names must already be in ``folder``. ``schema_version`` is set by this
    function; the caller need not give it.

    Raises:
        BundleError: ``meta`` fails validation or names a file that is not in ``folder``.
    """
    folder = Path(folder)
    path = folder / METADATA_FILE
    features = meta.get("preprocessor")
    needs_2 = (  # the runtime computes these features itself
        meta.get("includes_preprocessor") is False
        and isinstance(features, Mapping)
        and features.get("count_last_frame") is False
    )
    candidate = {**meta, "schema_version": 2 if needs_2 else 1}
    candidate.pop(_LEGACY_VERSION_KEY, None)
    settings = BundleSettings.from_json(candidate, path)
    _check_files(settings, folder, path)
    tmp = path.with_name(f".{METADATA_FILE}.tmp")
    tmp.write_text(json.dumps(candidate, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
    return settings


# ---------------------------------------------------------------------------------- helpers
def _schema_version(meta: Mapping[str, Any], where: str) -> int:
    key = "schema_version" if "schema_version" in meta else _LEGACY_VERSION_KEY
    if key not in meta:
        raise BundleError(
            f"{where}: key 'schema_version' is missing; this is not a bundle written by "
            "`convai export --format asr-bundle`"
        )
    version = meta[key]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(f"{where}: key {key!r} must be a positive integer, got {version!r}")
    if version > BUNDLE_SCHEMA_VERSION:
        raise BundleError(
            f"{where}: bundle schema {version} is newer than this runtime supports "
            f"({BUNDLE_SCHEMA_VERSION}); upgrade convai-asr-runtime"
        )
    return version


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _get(meta: Mapping[str, Any], key: str, kind: type, where: str, prefix: str = "") -> Any:
    """``meta[key]``, checked to be of ``kind`` (ints count as floats; bools as neither)."""
    if key not in meta:
        raise BundleError(f"{where}: key {prefix + key!r} is missing")
    value = meta[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, kind):
        expected = _TYPE_NAMES.get(kind, f"a JSON {'object' if kind is dict else 'array'}")
        raise BundleError(f"{where}: key {prefix + key!r} must be {expected}, got {value!r}")
    return value


def _file_name(meta: Mapping[str, Any], key: str, where: str) -> str:
    name = _get(meta, key, str, where)
    if not name or Path(name).name != name or name in (".", ".."):
        raise BundleError(
            f"{where}: key {key!r} must be a file name inside the bundle folder, got {name!r}"
        )
    return str(name)


def _features(section: Mapping[str, Any], where: str) -> FeatureSettings:
    """Every feature setting is required: a default here could silently differ from the
    preprocessor the graph was trained with."""
    p = "preprocessor."
    sizes = {k: _get(section, k, int, where, p) for k in ("n_fft", "hop_length", "win_length")}
    if min(sizes.values()) <= 0 or sizes["win_length"] > sizes["n_fft"]:
        raise BundleError(
            f"{where}: keys 'preprocessor.n_fft', 'preprocessor.hop_length' and "
            "'preprocessor.win_length' must be positive with win_length <= n_fft; got "
            f"{sizes}"
        )
    for key in ("preemph", "normalize"):  # may be null, but must be there
        if key not in section:
            raise BundleError(f"{where}: key {p + key!r} is missing")
    preemph = section["preemph"]
    if preemph is not None:
        preemph = _get(section, "preemph", float, where, p)
    normalize = section["normalize"]
    if normalize not in NORMALIZE_MODES:
        raise BundleError(
            f"{where}: key 'preprocessor.normalize' is {normalize!r}; this runtime knows "
            "'per_feature', 'all_features' and null (upgrade convai-asr-runtime if the bundle "
            "is newer)"
        )
    pad_to = _get(section, "pad_to", int, where, p)
    mag_power = _get(section, "mag_power", float, where, p)
    log_zero_guard = _get(section, "log_zero_guard", float, where, p)
    if pad_to < 0 or mag_power <= 0 or log_zero_guard < 0:
        raise BundleError(
            f"{where}: keys 'preprocessor.pad_to' ({pad_to}) and "
            f"'preprocessor.log_zero_guard' ({log_zero_guard}) must be >= 0 and "
            f"'preprocessor.mag_power' ({mag_power}) > 0"
        )
    return FeatureSettings(
        n_fft=sizes["n_fft"],
        hop_length=sizes["hop_length"],
        win_length=sizes["win_length"],
        preemph=preemph,
        log=_get(section, "log", bool, where, p),
        log_zero_guard=log_zero_guard,
        normalize=normalize,
        pad_to=pad_to,
        mag_power=mag_power,
        # absent in schema 1, whose bundles all count that frame
        count_last_frame=(
            _get(section, "count_last_frame", bool, where, p)
            if "count_last_frame" in section
            else True
        ),
    )


def _check_files(settings: BundleSettings, folder: Path, path: Path) -> None:
    for name in settings.required_files():
        if not (folder / name).is_file():
            raise BundleError(
                f"{path} names {name!r}, which is not in {folder}; re-export the bundle"
            )
