"""Import NeMo ``.nemo`` CTC checkpoints as convai ``asr/ctc`` models, without running their code.

A ``.nemo`` file is a tar (gzip-compressed before NeMo 1.7) holding ``model_config.yaml``,
``model_weights.ckpt`` (a ``torch.save`` state dict, i.e. a pickle) and tokenizer files. NeMo
itself unpickles the weights, and a pickle can run any code. Here:

- the tar is read in memory, never extracted: plain file names only (no absolute paths, no
  ``..``, no links, devices or sparse members), no duplicate members, a bounded member count,
  no member larger than the file (a bounded expansion for gzip), read in chunks;
- the config is YAML data (a safe loader that refuses aliases; resolver calls such as
  ``${oc.env:...}`` are refused, plain ``${...}`` references resolved), in the ``_target_`` form
  or the legacy ``cls``/``params`` form;
- the weights are read with ``torch.load(..., weights_only=True)`` only: a checkpoint that needs
  anything but tensors and plain containers is refused, and nothing in it runs.

Supported (``EncDecCTCModel`` with characters, ``EncDecCTCModelBPE`` with SentencePiece):

- ``AudioToMelSpectrogramPreprocessor`` -> ``asr/mel_spectrogram`` (the same steps: pre-emphasis,
  Hann-window STFT, Slaney mel filterbank, ``log(x + guard)``, per-feature normalization with
  NeMo's unbiased statistics, ``pad_to``); the importer checks that the filterbank and window
  NeMo saved equal the ones convai computes from the settings;
- ``ConvASREncoder`` (QuartzNet, Jasper without dense residuals, Citrinet with
  squeeze-and-excitation) -> ``asr/jasper_encoder``;
- ``ConformerEncoder`` (``striding`` subsampling by 4, ``rel_pos`` attention) ->
  ``asr/conformer_encoder``;
- ``ConvASRDecoder`` -> ``asr/ctc_head`` (blank last, as in NeMo).

Anything else (another architecture, an option that changes the computation, such as
``frame_splicing: 3`` or ``residual_dense: true``) is refused with an error naming it.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from convai_core.archive import tar_member_kind
from convai_core.errors import ConvaiError

__all__ = [
    "NemoCheckpoint",
    "NemoImportError",
    "import_nemo",
    "nemo_to_convai",
    "read_nemo",
]

CONFIG_MEMBER = "model_config.yaml"
WEIGHTS_MEMBER = "model_weights.ckpt"
_MAX_MEMBERS = 1000  # a .nemo holds a config, weights and a few tokenizer files
#: What a gzip-compressed .nemo may expand to (a plain tar holds at most its own size): the
#: largest NeMo CTC checkpoints are about 1 GB, and everything read is held in memory.
_MAX_EXPANDED_BYTES = 8 << 30
_MAX_CONFIG_BYTES = 4 << 20  # a model_config.yaml is a few KB
_CHUNK_BYTES = 1 << 20
_NEMO_PREFIX = "nemo:"  # how a NeMo config names a file inside its .nemo

CHAR_MODELS = frozenset({"EncDecCTCModel"})
BPE_MODELS = frozenset({"EncDecCTCModelBPE"})


class NemoImportError(ConvaiError):
    """A ``.nemo`` file that cannot be imported: unsafe, damaged or unsupported."""


@dataclass
class NemoCheckpoint:
    """What a ``.nemo`` file holds, read safely.

    Attributes:
        path: the file.
        config: ``model_config.yaml`` as plain data, legacy ``cls``/``params`` nodes rewritten
            to ``_target_`` form, interpolations resolved.
        state: the state dict (name -> tensor).
        files: the other members (tokenizer files), by name.
    """

    path: Path
    config: dict[str, Any]
    state: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    def member(self, reference: str, what: str) -> bytes:
        """The bytes of a member named in the config (``nemo:NAME`` or a path ending in NAME)."""
        name = reference[len(_NEMO_PREFIX) :] if reference.startswith(_NEMO_PREFIX) else reference
        name = PurePosixPath(name).name
        if name not in self.files:
            raise NemoImportError(
                f"{self.path}: the config names {what} {reference!r}, but the file holds no "
                f"member {name!r} (members: {', '.join(sorted(self.files)) or 'none'}); the "
                "checkpoint is incomplete - save it again with NeMo's save_to"
            )
        return self.files[name]


# ---------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------


def _plain_name(path: Path, name: str) -> str | None:
    """The member's file name (NeMo writes ``./NAME``); None for the top folder entry.

    Raises:
        NemoImportError: an absolute path, ``..``, a sub-folder, a backslash or a NUL.
    """
    stripped = name[2:] if name.startswith("./") else name
    if stripped in ("", "."):
        return None
    problem = None
    if "\0" in name or "\\" in name:
        problem = "it contains a NUL character or a backslash"
    elif name.startswith("/"):
        problem = "it is an absolute path"
    elif ".." in name.split("/"):
        problem = "it contains a '..' component"
    elif "/" in stripped.rstrip("/"):
        problem = "it is inside a sub-folder (.nemo files are flat)"
    if problem is not None:
        raise NemoImportError(
            f"{path}: unsafe member {name!r} refused because {problem}; the file was not "
            "written by NeMo or was tampered with. Nothing was extracted"
        )
    return stripped.rstrip("/")


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    """A member's bytes, read in chunks and never more than its header declares."""
    handle = tar.extractfile(info)
    if handle is None:
        return b""
    parts, remaining = [], info.size
    with handle:
        while remaining > 0:
            chunk = handle.read(min(_CHUNK_BYTES, remaining))
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
    return b"".join(parts)


def _read_members(path: Path) -> dict[str, bytes]:
    if not path.exists():
        raise NemoImportError(f"{path} does not exist; check the path of the .nemo file")
    if not path.is_file():
        raise NemoImportError(f"{path} is not a regular file; pass the .nemo file's path")
    if path.stat().st_size == 0:
        raise NemoImportError(f"{path} is empty (0 bytes); copy or download the .nemo file again")
    members: dict[str, bytes] = {}
    with path.open("rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    budget = _MAX_EXPANDED_BYTES if compressed else path.stat().st_size
    try:
        with tarfile.open(path, mode="r:*") as tar:  # plain or gzip (NeMo < 1.7)
            for count, info in enumerate(tar, start=1):
                if count > _MAX_MEMBERS:
                    raise NemoImportError(
                        f"{path}: more than {_MAX_MEMBERS} members; a .nemo holds a config, "
                        "weights and a few tokenizer files. Refusing to read it"
                    )
                name = _plain_name(path, info.name)
                if name is None:
                    if not info.isdir():
                        raise NemoImportError(f"{path}: member {info.name!r} is not a folder")
                    continue
                if not info.isreg():
                    raise NemoImportError(
                        f"{path}: member {info.name!r} is {tar_member_kind(info)}; a .nemo holds "
                        "regular files only. Refusing to read it"
                    )
                if name in members:
                    raise NemoImportError(
                        f"{path}: member {name!r} appears twice; the file was modified or corrupted"
                    )
                if info.issparse():
                    raise NemoImportError(
                        f"{path}: member {info.name!r} is a sparse file; a .nemo holds plain "
                        "regular files only. Refusing to read it"
                    )
                budget -= info.size
                if budget < 0:
                    raise NemoImportError(
                        f"{path}: member {name!r} declares {info.size:,} bytes, more than the "
                        "file holds: it is truncated (copy or download it again) or not a NeMo "
                        "checkpoint. Refusing to read it"
                    )
                if name == CONFIG_MEMBER and info.size > _MAX_CONFIG_BYTES:
                    raise NemoImportError(
                        f"{path}: {CONFIG_MEMBER} declares {info.size:,} bytes; a NeMo config is "
                        "a few KB. Refusing to read it"
                    )
                data = _read_member(tar, info)
                if len(data) != info.size:
                    raise NemoImportError(
                        f"{path}: member {name!r} is cut short ({len(data)} of {info.size} "
                        "bytes); the file is truncated - copy or download it again"
                    )
                members[name] = data
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # zlib.error is OSError
        raise NemoImportError(
            f"{path} is not a readable .nemo file (a tar, plain or gzip): {exc}; the file is "
            "truncated or corrupt - copy or download it again"
        ) from exc
    for required in (CONFIG_MEMBER, WEIGHTS_MEMBER):
        if required not in members:
            raise NemoImportError(
                f"{path}: no {required} inside (members: {', '.join(sorted(members)) or 'none'}); "
                "this is not a NeMo model checkpoint"
            )
    return members


def _legacy_to_target(node: Any) -> Any:
    """``{cls: X, params: {...}}`` (NeMo < 1.0) -> ``{_target_: X, ...}``, recursively."""
    if isinstance(node, Mapping):
        if "cls" in node and "_target_" not in node:
            params = node.get("params") or {}
            if not isinstance(params, Mapping):
                raise ValueError(f"the 'params' of {node['cls']!r} is not a mapping")
            rest = {k: v for k, v in node.items() if k not in ("cls", "params")}
            return _legacy_to_target({"_target_": node["cls"], **rest, **dict(params)})
        return {key: _legacy_to_target(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_legacy_to_target(item) for item in node]
    return node


_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")  # ${oc.env:X}, ${name:args}


def _refuse_resolver_calls(node: Any, where: str, path: Path) -> None:
    """Plain ``${a.b}`` references are resolved; a resolver call (``${oc.env:HOME}``) could read
    the environment or run registered code, so it is refused."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            _refuse_resolver_calls(value, f"{where}.{key}" if where else str(key), path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_resolver_calls(value, f"{where}[{index}]", path)
    elif isinstance(node, str) and _RESOLVER_CALL.search(node):
        raise NemoImportError(
            f"{path}: {CONFIG_MEMBER} key {where} = {node!r} calls a resolver; convai resolves "
            "plain ${...} references only. Replace it with its value"
        )


def _load_config(path: Path, data: bytes) -> dict[str, Any]:
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    class NoAliases(yaml.SafeLoader):
        """YAML data without anchors and aliases (NeMo never writes them; an alias bomb is a
        few hundred bytes that expand without bound)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases are not accepted", event.start_mark
                )
            return super().compose_node(parent, index)

    try:
        raw = yaml.load(data.decode("utf-8"), Loader=NoAliases)  # a SafeLoader
        if not isinstance(raw, Mapping):
            raise NemoImportError(f"{path}: {CONFIG_MEMBER} holds no mapping; the file is corrupt")
        _refuse_resolver_calls(raw, "", path)
        cfg = OmegaConf.to_container(OmegaConf.create(dict(raw)), resolve=True)
        return dict(_legacy_to_target(cfg))
    except NemoImportError:
        raise
    except (UnicodeDecodeError, yaml.YAMLError, OmegaConfBaseException, ValueError,
            TypeError) as exc:  # fmt: skip
        raise NemoImportError(
            f"{path}: {CONFIG_MEMBER} is not readable YAML or names values it does not hold "
            f"({exc}); the checkpoint is corrupt or its config was edited by hand"
        ) from exc


def _load_weights(path: Path, data: bytes) -> dict[str, Any]:
    import torch

    version = tuple(int(part) for part in re.findall(r"\d+", torch.__version__)[:2])
    if version < (2, 6):
        raise NemoImportError(
            f"{path}: importing needs torch >= 2.6 (torch {torch.__version__} is installed): "
            "weights_only loading could run code from a checkpoint before 2.6 "
            "(CVE-2025-32434). Upgrade torch"
        )

    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()
        detail = next((line for line in reason if "GLOBAL" in line or "global" in line), "")
        raise NemoImportError(
            f"{path}: {WEIGHTS_MEMBER} refused: it needs more than tensors to load "
            f"({detail or (reason[0] if reason else 'unsupported pickle content')}). convai "
            "reads checkpoints with torch.load(weights_only=True) only and never runs code "
            "from them; if you trust this file, load it in NeMo and save the state dict as "
            "plain tensors"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise NemoImportError(
            f"{path}: {WEIGHTS_MEMBER} is not a readable torch checkpoint ({exc}); the file is "
            "truncated or corrupt"
        ) from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]  # a Lightning checkpoint
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise NemoImportError(
            f"{path}: {WEIGHTS_MEMBER} holds a {type(loaded).__name__}, not a state dict of "
            "named tensors"
        )
    return dict(loaded)


def read_nemo(path: str | os.PathLike[str]) -> NemoCheckpoint:
    """Read a ``.nemo`` file without executing anything from it.

    Raises:
        NemoImportError: a missing, truncated, corrupt or tampered file, an unsafe member, or
            weights that need more than tensors to load.
    """
    path = Path(path)
    members = _read_members(path)
    config = _load_config(path, members.pop(CONFIG_MEMBER))
    state = _load_weights(path, members.pop(WEIGHTS_MEMBER))
    return NemoCheckpoint(path=path, config=config, state=state, files=members)


# ---------------------------------------------------------------------------------------------
# Config translation
# ---------------------------------------------------------------------------------------------


def _class_name(node: Mapping[str, Any], where: str, source: Path) -> str:
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise NemoImportError(
            f"{source}: {where} names no class (_target_ or cls); the config is not one NeMo writes"
        )
    return target.rsplit(".", 1)[-1]


class _Options:
    """A NeMo config node read key by key; whatever is left unread is an unsupported option."""

    def __init__(self, node: Mapping[str, Any], where: str, source: Path) -> None:
        self.node = {k: v for k, v in node.items() if k != "_target_"}
        self.where = where
        self.source = source
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.node.get(key, default)

    def require(self, key: str, allowed: Callable[[Any], bool], expect: str, default: Any) -> Any:
        """A key whose value must pass ``allowed`` (convai computes only that case)."""
        value = self.get(key, default)
        if not allowed(value):
            raise NemoImportError(
                f"{self.source}: {self.where}.{key} = {value!r} is not supported (convai "
                f"imports {expect}); no convai module computes this model the same way"
            )
        return value

    def ignore(self, *keys: str) -> None:
        """Keys with no effect on inference (training-time options, implementation choices)."""
        self.read.update(keys)

    def finish(self) -> None:
        unknown = sorted(set(self.node) - self.read)
        if unknown:
            raise NemoImportError(
                f"{self.source}: {self.where} has options convai does not know: "
                f"{', '.join(unknown)}; the importer cannot tell whether they change the "
                "computation, so it stops here (please report them)"
            )


def _is(value: Any) -> Callable[[Any], bool]:
    return lambda given: given == value


def _preprocessor(node: Mapping[str, Any], source: Path) -> tuple[dict[str, Any], int]:
    where = "model.preprocessor"
    name = _class_name(node, where, source)
    if name != "AudioToMelSpectrogramPreprocessor":
        raise NemoImportError(
            f"{source}: {where} is {name}; convai imports AudioToMelSpectrogramPreprocessor "
            "(log-mel features) only"
        )
    opts = _Options(node, where, source)
    sample_rate = int(opts.get("sample_rate", 16000))
    window_size = opts.get("window_size", 0.02)
    window_stride = opts.get("window_stride", 0.01)
    if opts.get("n_window_size") is not None:
        window_size = int(opts.get("n_window_size")) / sample_rate
    if opts.get("n_window_stride") is not None:
        window_stride = int(opts.get("n_window_stride")) / sample_rate
    normalize = opts.require(
        "normalize", lambda v: v in ("per_feature", "all_features", None, "None"),
        "per_feature, all_features or no normalization", "per_feature",
    )  # fmt: skip
    guard = opts.require(
        "log_zero_guard_value", lambda v: isinstance(v, int | float),
        "a numeric log_zero_guard_value", 2**-24,
    )  # fmt: skip
    pad_to = opts.require("pad_to", lambda v: isinstance(v, int) and v >= 0, "pad_to >= 0", 16)
    opts.require("window", _is("hann"), "window: hann", "hann")
    opts.require("log_zero_guard_type", _is("add"), "log_zero_guard_type: add", "add")
    opts.require("frame_splicing", _is(1), "frame_splicing: 1", 1)
    opts.require("exact_pad", _is(False), "exact_pad: false", False)
    opts.require("stft_exact_pad", _is(False), "stft_exact_pad: false", False)
    opts.require("pad_value", lambda v: v in (0, 0.0), "pad_value: 0", 0)
    opts.require("mel_norm", _is("slaney"), "mel_norm: slaney", "slaney")
    # training-time narrow-band augmentation, the random source, and implementation switches
    opts.ignore("nb_augmentation_prob", "nb_max_freq", "rng", "use_torchaudio", "stft_conv")
    cfg = {
        "name": "asr/mel_spectrogram",
        "window_size": float(window_size),
        "window_stride": float(window_stride),
        "n_fft": opts.get("n_fft"),
        "n_mels": int(opts.get("features", 64)),
        "dither": float(opts.get("dither", 1e-5)),
        "preemph": opts.get("preemph", 0.97),
        "log": bool(opts.get("log", True)),
        "log_zero_guard": float(guard),
        "normalize": None if normalize in (None, "None") else normalize,
        "pad_to": int(pad_to),
        "mag_power": float(opts.get("mag_power", 2.0)),
        "f_min": float(opts.get("lowfreq", 0) or 0),
        "f_max": None if opts.get("highfreq") is None else float(opts.get("highfreq")),
        "count_last_frame": False,  # NeMo 3 counts length // hop valid frames
    }
    opts.finish()
    return cfg, sample_rate


def _one(value: Any, key: str, where: str, source: Path) -> int:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise NemoImportError(
                f"{source}: {where}.{key} = {value!r} is not supported (one value per block)"
            )
        value = value[0]
    return int(value)


def _jasper_blocks(node: Mapping[str, Any], source: Path) -> list[dict[str, Any]]:
    where = "model.encoder"
    opts = _Options(node, where, source)
    opts.require("activation", _is("relu"), "activation: relu", None)
    opts.require("conv_mask", _is(True), "conv_mask: true (masked convolutions)", True)
    opts.require("frame_splicing", _is(1), "frame_splicing: 1", 1)
    opts.require("normalization_mode", _is("batch"), "normalization_mode: batch", "batch")
    opts.require("quantize", _is(False), "quantize: false", False)
    encoder_residual_mode = opts.require(
        "residual_mode", lambda v: v in ("add", "stride_add"), "residual_mode add or stride_add",
        "add",
    )  # fmt: skip
    opts.ignore("feat_in", "init_mode", "norm_groups")
    layers = opts.get("jasper")
    opts.finish()
    if not isinstance(layers, list) or not layers:
        raise NemoImportError(f"{source}: {where}.jasper holds no block list")
    blocks = []
    for index, layer in enumerate(layers):
        block_where = f"{where}.jasper[{index}]"
        block = _Options(layer, block_where, source)
        repeat = int(block.get("repeat", 1))
        stride = _one(block.get("stride", 1), "stride", block_where, source)
        stride_last = bool(block.get("stride_last", False))
        mode = block.require(
            "residual_mode", lambda v: v in ("add", "stride_add"),
            "residual_mode add or stride_add", encoder_residual_mode,
        )  # fmt: skip
        residual = bool(block.get("residual", False))
        if stride > 1 and repeat > 1 and not stride_last:
            raise NemoImportError(
                f"{source}: {block_where} strides every one of its {repeat} sub-blocks "
                "(stride > 1, repeat > 1, stride_last false); convai strides one sub-block "
                "per block"
            )
        factor = float(block.get("kernel_size_factor", 1.0))
        kernel = _one(block.get("kernel"), "kernel", block_where, source)
        kernel = max(int(kernel * factor), 1)
        kernel += 1 - kernel % 2  # NeMo rounds an even scaled kernel up to odd
        se = bool(block.get("se", False))
        if se:
            block.require("se_context_size", _is(-1), "se_context_size: -1 (global)", -1)
        else:
            block.ignore("se_context_size", "se_reduction_ratio")
        block.ignore("se_interpolation_mode")
        block.require("residual_dense", _is(False), "residual_dense: false", False)
        block.require("groups", _is(1), "groups: 1", 1)
        block.require("heads", _is(-1), "heads: -1", -1)
        block.require("future_context", _is(-1), "future_context: -1 (symmetric)", -1)
        block.require("normalization", _is("batch"), "normalization: batch", "batch")
        block.ignore("norm_groups", "quantize", "layer_idx")
        blocks.append(
            {
                "filters": int(block.get("filters")),
                "repeat": repeat,
                "kernel": kernel,
                "stride": stride,
                "dilation": _one(block.get("dilation", 1), "dilation", block_where, source),
                "dropout": float(block.get("dropout", 0.0)),
                "residual": residual,
                "separable": bool(block.get("separable", False)),
                "stride_last": stride_last,
                "residual_stride": mode == "stride_add" or stride == 1,
                "se": se,
                "se_reduction_ratio": int(block.get("se_reduction_ratio", 8)),
            }
        )
        block.finish()
    return blocks


def _conformer(node: Mapping[str, Any], source: Path) -> dict[str, Any]:
    where = "model.encoder"
    opts = _Options(node, where, source)
    d_model = int(opts.get("d_model"))
    channels = int(opts.get("subsampling_conv_channels", -1))
    opts.require("subsampling", _is("striding"), "subsampling: striding", "striding")
    opts.require("subsampling_factor", _is(4), "subsampling_factor: 4", 4)
    opts.require("causal_downsampling", _is(False), "causal_downsampling: false", False)
    opts.require("self_attention_model", _is("rel_pos"), "self_attention_model: rel_pos", "rel_pos")
    opts.require(
        "att_context_size", lambda v: v in (None, [-1, -1]), "full attention ([-1, -1])", None
    )
    opts.require("att_context_style", _is("regular"), "att_context_style: regular", "regular")
    opts.require("att_context_probs", _is(None), "att_context_probs: null", None)
    opts.require("att_chunk_context_size", _is(None), "att_chunk_context_size: null", None)
    opts.require("conv_norm_type", _is("batch_norm"), "conv_norm_type: batch_norm", "batch_norm")
    kernel = int(opts.get("conv_kernel_size", 31))
    half = (kernel - 1) // 2
    opts.require(
        "conv_context_size", lambda v: v in (None, [half, half]),
        f"symmetric convolutions (conv_context_size null or [{half}, {half}])", None,
    )  # fmt: skip
    opts.require("conv_context_style", _is("regular"), "conv_context_style: regular", "regular")
    opts.require("feat_out", lambda v: v in (-1, None), "feat_out: -1", -1)
    opts.require("reduction", _is(None), "reduction: null", None)
    opts.require("reduction_position", _is(None), "reduction_position: null", None)
    opts.require("global_tokens", _is(0), "global_tokens: 0", 0)
    opts.require("use_bias", _is(True), "use_bias: true", True)
    # training-time regularizers and implementation switches with the same results
    opts.ignore(
        "feat_in", "pos_emb_max_len", "subsampling_conv_chunking_factor", "reduction_factor",
        "dropout_pre_encoder", "dropout_emb", "stochastic_depth_drop_prob",
        "stochastic_depth_mode", "stochastic_depth_start_layer", "global_tokens_spacing",
        "global_attn_separate", "use_pytorch_sdpa", "use_pytorch_sdpa_backends",
        "sync_max_audio_length", "untie_biases",
    )  # fmt: skip
    cfg = {
        "name": "asr/conformer_encoder",
        "d_model": d_model,
        "n_layers": int(opts.get("n_layers")),
        "n_heads": int(opts.get("n_heads", 4)),
        "ff_expansion": int(opts.get("ff_expansion_factor", 4)),
        "conv_kernel": kernel,
        "subsampling_factor": 4,
        "subsampling_conv_channels": d_model if channels == -1 else channels,
        "dropout": float(opts.get("dropout", 0.1)),
        "dropout_att": float(opts.get("dropout_att", 0.0)),
        "pos_encoding": "rel",
        "xscaling": bool(opts.get("xscaling", True)),
    }
    opts.finish()
    return cfg


def _vocabulary(ckpt: NemoCheckpoint, model_class: str, workdir: Path) -> dict[str, Any]:
    """The convai tokenizer node: characters from the labels, or the SentencePiece model file
    written to ``workdir`` (the model archives it)."""
    cfg, source = ckpt.config, ckpt.path
    decoder = cfg.get("decoder") or {}
    if model_class in CHAR_MODELS:
        labels = cfg.get("labels") or decoder.get("vocabulary")
        if not labels or not all(isinstance(x, str) and len(x) == 1 for x in labels):
            raise NemoImportError(
                f"{source}: model.labels / model.decoder.vocabulary must list single characters "
                f"for a character model; got {labels!r:.200}"
            )
        return {"name": "asr/char", "vocabulary": list(labels)}
    tokenizer = cfg.get("tokenizer") or {}
    kind = tokenizer.get("type")
    if kind != "bpe":
        raise NemoImportError(
            f"{source}: model.tokenizer.type = {kind!r}; convai imports SentencePiece "
            "tokenizers (type: bpe) only"
        )
    reference = tokenizer.get("model_path")
    if not isinstance(reference, str):
        raise NemoImportError(f"{source}: model.tokenizer.model_path is missing")
    target = workdir / "tokenizer.model"
    target.write_bytes(ckpt.member(reference, "the SentencePiece model"))
    return {"name": "asr/sentencepiece", "model_path": str(target)}


def _augmentations(node: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """NeMo's SpecAugment settings as convai augmentations (training only)."""
    if not node:
        return []
    items: list[dict[str, Any]] = []
    freq_masks, time_masks = int(node.get("freq_masks", 0)), int(node.get("time_masks", 0))
    if freq_masks or time_masks:
        items.append(
            {
                "name": "asr/spec_augment",
                "freq_masks": freq_masks,
                "freq_width": int(node.get("freq_width", 10)),
                "time_masks": time_masks,
                "time_width": node.get("time_width", 10),
            }
        )
    if int(node.get("rect_masks", 0)):
        items.append(
            {
                "name": "asr/spec_cutout",
                "rect_masks": int(node["rect_masks"]),
                "rect_time": int(node.get("rect_time", 5)),
                "rect_freq": int(node.get("rect_freq", 20)),
            }
        )
    return items


def nemo_to_convai(ckpt: NemoCheckpoint, workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``asr/ctc`` model config of a NeMo checkpoint (tokenizer files written to ``workdir``).

    Raises:
        NemoImportError: an unsupported model class, module or option (named).
    """
    from convai_core.config_utils import to_plain
    from convai_core.train import compose_config

    cfg, source = ckpt.config, ckpt.path
    target = cfg.get("target")
    if isinstance(target, str):
        model_class = target.rsplit(".", 1)[-1]
    else:  # older files do not record the class: a tokenizer section means sub-words
        model_class = "EncDecCTCModelBPE" if cfg.get("tokenizer") else "EncDecCTCModel"
    if model_class not in CHAR_MODELS | BPE_MODELS:
        raise NemoImportError(
            f"{source}: the model class is {model_class}; convai imports CTC models "
            "(EncDecCTCModel, EncDecCTCModelBPE) only"
        )
    for part in ("preprocessor", "encoder", "decoder"):
        if not isinstance(cfg.get(part), Mapping):
            raise NemoImportError(f"{source}: model.{part} is missing from {CONFIG_MEMBER}")
    preprocessor, sample_rate = _preprocessor(cfg["preprocessor"], source)
    encoder_class = _class_name(cfg["encoder"], "model.encoder", source)
    if encoder_class == "ConvASREncoder":
        encoder: dict[str, Any] = {
            "name": "asr/jasper_encoder",
            "blocks": _jasper_blocks(cfg["encoder"], source),
        }
        base = "asr/quartznet_15x5"
    elif encoder_class == "ConformerEncoder":
        encoder = _conformer(cfg["encoder"], source)
        base = "asr/conformer_ctc_small"
    else:
        raise NemoImportError(
            f"{source}: model.encoder is {encoder_class}; convai imports ConvASREncoder "
            "(QuartzNet, Jasper, Citrinet) and ConformerEncoder"
        )
    decoder_class = _class_name(cfg["decoder"], "model.decoder", source)
    if decoder_class != "ConvASRDecoder":
        raise NemoImportError(
            f"{source}: model.decoder is {decoder_class}; convai imports ConvASRDecoder only"
        )
    model = to_plain(compose_config([f"model={base}"]).model)
    model.update(
        sample_rate=sample_rate,
        tokenizer=_vocabulary(ckpt, model_class, Path(workdir)),
        preprocessor=preprocessor,
        augmentations=_augmentations(cfg.get("spec_augment")),
        encoder=encoder,
    )
    model["train_ds"]["manifest"] = None
    model["imported_from"] = {"format": "nemo", "file": source.name, "class": model_class}
    return dict(model)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _jasper_names(blocks: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(NeMo prefix, convai prefix) of every module with weights in a ConvASREncoder."""
    for b, block in enumerate(blocks):
        nemo, ours = f"encoder.encoder.{b}", f"encoder.blocks.{b}"
        index = 0
        for r in range(block["repeat"]):
            sub = f"{ours}.sub_blocks.{r}"
            yield f"{nemo}.mconv.{index}.conv", f"{sub}.time_conv.conv"
            index += 1
            if block["separable"]:
                yield f"{nemo}.mconv.{index}.conv", f"{sub}.pointwise"
                index += 1
            yield f"{nemo}.mconv.{index}", f"{sub}.norm"
            index += 1
            if r < block["repeat"] - 1:
                index += 2  # activation, dropout
        if block["se"]:
            yield f"{nemo}.mconv.{index}.fc.0", f"{ours}.se.squeeze"
            yield f"{nemo}.mconv.{index}.fc.2", f"{ours}.se.excite"
        if block["residual"]:
            yield f"{nemo}.res.0.0.conv", f"{ours}.residual.0.conv"
            yield f"{nemo}.res.0.1", f"{ours}.residual.1"


def _conformer_names(n_layers: int) -> Iterator[tuple[str, str]]:
    yield "encoder.pre_encode.conv.0", "encoder.subsampling.conv1"
    yield "encoder.pre_encode.conv.2", "encoder.subsampling.conv2"
    yield "encoder.pre_encode.out", "encoder.subsampling.out"
    pairs = {
        "norm_feed_forward1": "ff1.net.0",
        "feed_forward1.linear1": "ff1.net.1",
        "feed_forward1.linear2": "ff1.net.4",
        "norm_self_att": "attention.norm",
        "self_attn.linear_out": "attention.out",
        "self_attn.linear_pos": "attention.pos_proj",
        "norm_conv": "conv.norm",
        "conv.pointwise_conv1": "conv.pointwise_in",
        "conv.depthwise_conv": "conv.depthwise",
        "conv.batch_norm": "conv.batch_norm",
        "conv.pointwise_conv2": "conv.pointwise_out",
        "norm_feed_forward2": "ff2.net.0",
        "feed_forward2.linear1": "ff2.net.1",
        "feed_forward2.linear2": "ff2.net.4",
        "norm_out": "norm_out",
    }
    for i in range(n_layers):
        for nemo, ours in pairs.items():
            yield f"encoder.layers.{i}.{nemo}", f"encoder.layers.{i}.{ours}"


def _map_state(
    state: Mapping[str, Any], model_cfg: Mapping[str, Any], source: Path
) -> dict[str, Any]:
    """NeMo's state dict renamed (and Q/K/V fused) for the convai model."""
    import torch

    remaining = dict(state)
    mapped: dict[str, Any] = {}

    def move(nemo_prefix: str, our_prefix: str) -> None:
        found = [k for k in remaining if k.startswith(nemo_prefix + ".")]
        if not found:
            raise NemoImportError(
                f"{source}: the weights hold nothing under {nemo_prefix!r}, which the config's "
                "architecture needs; the checkpoint does not match its config"
            )
        for key in found:
            mapped[our_prefix + key[len(nemo_prefix) :]] = remaining.pop(key)

    encoder = model_cfg["encoder"]
    if encoder["name"] == "asr/jasper_encoder":
        for nemo, ours in _jasper_names(encoder["blocks"]):
            move(nemo, ours)
    else:
        for nemo, ours in _conformer_names(encoder["n_layers"]):
            move(nemo, ours)
        shared = {k: remaining.pop(f"encoder.{k}", None) for k in ("pos_bias_u", "pos_bias_v")}
        for i in range(encoder["n_layers"]):
            attn = f"encoder.layers.{i}.self_attn"
            for suffix in ("weight", "bias"):
                parts = [remaining.pop(f"{attn}.linear_{x}.{suffix}", None) for x in "qkv"]
                if any(p is None for p in parts):
                    raise NemoImportError(
                        f"{source}: {attn}.linear_q/k/v.{suffix} missing from the weights"
                    )
                mapped[f"encoder.layers.{i}.attention.qkv.{suffix}"] = torch.cat(parts, dim=0)
            for ours, name in (("bias_u", "pos_bias_u"), ("bias_v", "pos_bias_v")):
                value = remaining.pop(f"{attn}.{name}", None)
                value = value if value is not None else shared[name]  # untie_biases: false
                if value is None:
                    raise NemoImportError(f"{source}: {attn}.{name} missing from the weights")
                mapped[f"encoder.layers.{i}.attention.{ours}"] = value.clone()
    move("decoder.decoder_layers.0", "decoder.projection")
    for key in [k for k in remaining if k.startswith("preprocessor.")]:
        mapped[key] = remaining.pop(key)  # checked against convai's own, then dropped
    if remaining:
        raise NemoImportError(
            f"{source}: weights the importer cannot place: {', '.join(sorted(remaining)[:8])}"
            f"{' ...' if len(remaining) > 8 else ''}; the checkpoint holds parts its config does "
            "not describe"
        )
    return mapped


def _check_features(model: Any, nemo_state: Mapping[str, Any], source: Path) -> None:
    """NeMo's saved filterbank and window against the ones convai computes from the settings."""
    import torch

    checks = (
        ("preprocessor.featurizer.fb", "filterbank", "mel filterbank"),
        ("preprocessor.featurizer.window", "window", "analysis window"),
    )
    for key, attribute, what in checks:
        theirs = nemo_state.get(key)
        if theirs is None:
            continue
        ours = getattr(model.preprocessor, attribute)
        theirs = theirs.reshape(ours.shape) if theirs.numel() == ours.numel() else theirs
        if theirs.shape != ours.shape:
            raise NemoImportError(
                f"{source}: NeMo's {what} has shape {tuple(theirs.shape)}, convai computes "
                f"{tuple(ours.shape)} from the same settings; the preprocessor options do not "
                "describe these features"
            )
        scale = float(theirs.abs().max()) or 1.0
        diff = float((theirs.to(ours.dtype) - ours).abs().max()) / scale
        if diff > 1e-5:  # convai's Slaney filterbank equals NeMo 3's bit for bit
            raise NemoImportError(
                f"{source}: NeMo's {what} differs from convai's by {diff:.2e} (relative); the "
                "preprocessor options do not describe these features"
            )
        if not torch.isfinite(theirs).all():
            raise NemoImportError(f"{source}: NeMo's {what} holds non-finite values")


def _stage(source: Path, what: str, step: Callable[[], Any]) -> Any:
    """Run one step of the import; a malformed config's TypeError, ValueError, KeyError or
    AttributeError becomes an error that names the file and the step."""
    try:
        return step()
    except ConvaiError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise NemoImportError(
            f"{source}: building {what} failed ({type(exc).__name__}: {exc}); the config holds "
            "a value of the wrong kind or misses a required key (NeMo writes every key its "
            "modules need)"
        ) from exc


def import_nemo(
    path: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> tuple[Any, str]:
    """Import a NeMo CTC ``.nemo`` file as a convai ``asr/ctc`` model.

    Args:
        path: the ``.nemo`` file.
        output: where to write the ``.convai`` archive (atomically); None: do not write one
            (a SentencePiece model file then stays in a temporary folder, which is not removed:
            the model refers to it).

    Returns:
        The model (eval mode; restored from the archive when one was written) and a one-line
        summary.

    Raises:
        NemoImportError: an unsafe, damaged or unsupported file (the message says which part).
    """
    from convai_asr.models.ctc import CTCModel

    ckpt = read_nemo(path)
    # the SentencePiece file must outlive the model when no archive is written (the model
    # refers to it until it is saved); with an archive, the restored copy is returned
    workdir = tempfile.mkdtemp(prefix="convai-nemo-")
    keep = False
    try:
        cfg = _stage(ckpt.path, "its config", lambda: nemo_to_convai(ckpt, workdir))
        mapped = _stage(ckpt.path, "its weights", lambda: _map_state(ckpt.state, cfg, ckpt.path))
        model = _stage(ckpt.path, "the convai model", lambda: CTCModel(cfg))
        _check_features(model, mapped, ckpt.path)
        weights = {k: v for k, v in mapped.items() if not k.startswith("preprocessor.")}
        expected = model.state_dict()
        missing = sorted(set(expected) - set(weights))
        if missing:
            raise NemoImportError(
                f"{ckpt.path}: the weights lack {', '.join(missing[:8])}"
                f"{' ...' if len(missing) > 8 else ''}; the checkpoint is incomplete"
            )
        for key, value in weights.items():
            if key not in expected or tuple(value.shape) != tuple(expected[key].shape):
                shape = tuple(expected[key].shape) if key in expected else "no such tensor"
                raise NemoImportError(
                    f"{ckpt.path}: weight {key} has shape {tuple(value.shape)}, the config's "
                    f"model needs {shape}; the checkpoint does not match its config"
                )
        model.load_state_dict(weights, strict=True)
        if output is not None:
            archive = model.save_to(output)  # atomic
            restored = CTCModel.restore_from(archive)
            assert isinstance(restored, CTCModel)  # restore_from checks the archive's class
            model = restored
        else:
            keep = any(Path(workdir).iterdir())  # the model still refers to its files
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    summary = (
        f"{cfg['imported_from']['class']} with {type(model.encoder).__name__}: "
        f"{params / 1e6:.2f}M parameters, {model.tokenizer.vocab_size} tokens "
        f"({cfg['tokenizer']['name']}), {model.sample_rate} Hz"
    )
    return model, summary
