"""Tests of convai_core.types: port compatibility, runtime checks, export helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from convai_core.errors import NeuralTypeError
from convai_core.types import (
    CLASS,
    MEL,
    TOKEN,
    AudioSignal,
    AxisKind,
    B,
    C,
    D,
    EncodedRepresentation,
    Lengths,
    Logits,
    LogProbs,
    Mask,
    MelSpectrogram,
    NeuralType,
    SpectrogramType,
    T,
    Text,
    TokenIds,
    Typed,
    check_chain,
    check_tensors,
    connect,
    dynamic_axes,
    export_input_names,
    is_typecheck_enabled,
    typecheck,
    typed,
)

SRC = Path(__file__).resolve().parents[1] / "src"
N_MELS, HIDDEN, VOCAB, HOP = 8, 16, 5, 4


# -- small modules that declare ports ----------------------------------------------------------


class AudioSource(nn.Module):
    """Produces waveforms at a given sample rate."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = sample_rate

    @property
    def input_ports(self):
        return {}

    @property
    def output_ports(self):
        return {
            "audio_signal": NeuralType((B, T), AudioSignal(sample_rate=self.sample_rate)),
            "length": NeuralType((B,), Lengths()),
        }


class AudioToMel(nn.Module):
    """Frames the waveform by HOP samples and projects each frame to N_MELS bins."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(HOP, N_MELS)

    @property
    def input_ports(self):
        return {
            "audio_signal": NeuralType((B, T), AudioSignal(sample_rate=16000)),
            "length": NeuralType((B,), Lengths()),
        }

    @property
    def output_ports(self):
        return {
            "processed_signal": NeuralType((B, MEL.sized(N_MELS), T), MelSpectrogram(N_MELS)),
            "processed_length": NeuralType((B,), Lengths()),
        }

    @typed
    def forward(self, audio_signal, length):
        frames = audio_signal.reshape(audio_signal.shape[0], -1, HOP)  # (B, T) -> (B, T/HOP, HOP)
        spec = self.project(frames).transpose(1, 2)  # (B, T', MEL) -> (B, MEL, T')
        return spec, length // HOP


class TinyEncoder(nn.Module):
    @property
    def input_ports(self):
        return {
            "audio_signal": NeuralType((B, MEL.sized(N_MELS), T), SpectrogramType()),
            "length": NeuralType((B,), Lengths()),
            "spec_mask": NeuralType((B, T), Mask(), optional=True),
        }

    @property
    def output_ports(self):
        return {
            "encoded": NeuralType((B, D.sized(HIDDEN), T), EncodedRepresentation()),
            "encoded_len": NeuralType((B,), Lengths()),
        }

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(N_MELS, HIDDEN, kernel_size=1)

    @typed
    def forward(self, *, audio_signal, length, spec_mask=None):
        return {"encoded": self.conv(audio_signal), "encoded_len": length}


class TinyCTCDecoder(nn.Module):
    def __init__(self, element=None) -> None:
        super().__init__()
        self.linear = nn.Linear(HIDDEN, VOCAB)
        self.element = element or LogProbs()

    @property
    def input_ports(self):
        return {"encoder_output": NeuralType((B, C.sized(HIDDEN), T), EncodedRepresentation())}

    @property
    def output_ports(self):
        return {"log_probs": NeuralType((B, T, CLASS.sized(VOCAB)), self.element)}

    @typed
    def forward(self, encoder_output):
        logits = self.linear(encoder_output.transpose(1, 2))  # (B, C, T) -> (B, T, C)
        return logits.log_softmax(dim=-1)


class CTCLossModule(nn.Module):
    @property
    def input_ports(self):
        return {
            "log_probs": NeuralType((B, T, CLASS), LogProbs()),
            "targets": NeuralType((B, TOKEN), TokenIds()),
        }

    @property
    def output_ports(self):
        return {}


class RawAudioEncoder(nn.Module):
    """Takes waveforms: wrong consumer for a spectrogram."""

    @property
    def input_ports(self):
        return {"processed_signal": NeuralType((B, T), AudioSignal(sample_rate=16000))}

    @property
    def output_ports(self):
        return {}


class TimeMajorSpec(nn.Module):
    """Produces (B, T, MEL): right element, wrong axis order."""

    @property
    def input_ports(self):
        return {}

    @property
    def output_ports(self):
        return {
            "audio_signal": NeuralType((B, T, MEL.sized(N_MELS)), MelSpectrogram(N_MELS)),
            "length": NeuralType((B,), Lengths()),
        }


class BadOutput(nn.Module):
    @property
    def input_ports(self):
        return {"x": NeuralType((B, T), AudioSignal())}

    @property
    def output_ports(self):
        return {"y": NeuralType((B, T), AudioSignal())}

    @typed
    def forward(self, x):
        return x[:, None, :]  # (B, T) -> (B, 1, T): one axis too many


TO_ENCODER = {"processed_signal": "audio_signal", "processed_length": "length"}


@pytest.fixture(autouse=True)
def _checking_off():
    with typecheck(False):
        yield


def _audio(batch: int = 2, samples: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, samples), torch.full((batch,), samples, dtype=torch.long)


# -- declarations --------------------------------------------------------------------------------


def test_str_and_aliases():
    assert str(NeuralType((B, T), AudioSignal(sample_rate=16000))) == (
        "(B, T) AudioSignal(sample_rate=16000)"
    )
    assert (
        str(NeuralType((B, MEL.sized(80), T), MelSpectrogram())) == "(B, MEL=80, T) MelSpectrogram"
    )
    assert str(NeuralType(None, Lengths(), optional=True)) == "(...) Lengths, optional"
    assert AxisKind.DIMENSION is AxisKind.CHANNEL and D == C
    assert isinstance(AudioToMel(), Typed)


def test_bad_declarations_raise():
    with pytest.raises(NeuralTypeError, match=r"write AudioSignal\(\)"):
        NeuralType((B, T), AudioSignal)
    with pytest.raises(NeuralTypeError, match=r"\(B,\)"):
        NeuralType(B, Lengths())
    with pytest.raises(NeuralTypeError, match="positive int"):
        AudioSignal(sample_rate=0)


def test_element_compatibility():
    assert LogProbs().is_compatible(LogProbs()) is None
    assert SpectrogramType().is_compatible(MelSpectrogram(80)) is None
    assert MelSpectrogram().is_compatible(SpectrogramType()) is not None
    assert TokenIds().is_compatible(Lengths()) is not None
    assert AudioSignal(16000).is_compatible(AudioSignal()) is None
    assert "n_mels=64" in MelSpectrogram(80).is_compatible(MelSpectrogram(64))
    assert Text().is_compatible(Logits()) is not None


# -- connecting ports ----------------------------------------------------------------------------


def test_compatible_chain_passes():
    links = check_chain(
        [AudioSource(16000), AudioToMel(), TinyEncoder(), TinyCTCDecoder()],
        mappings=[None, TO_ENCODER, {"encoded": "encoder_output"}],
    )
    assert links == [
        {"audio_signal": "audio_signal", "length": "length"},
        TO_ENCODER,
        {"encoded": "encoder_output"},
    ]


def test_mapping_works_and_optional_input_may_be_missing():
    links = connect(AudioToMel(), TinyEncoder(), mapping=TO_ENCODER)
    assert links == TO_ENCODER  # spec_mask is optional: left unconnected


def test_missing_required_input_raises_with_mapping_hint():
    with pytest.raises(NeuralTypeError) as info:
        connect(AudioToMel(), TinyEncoder(), mapping={"processed_signal": "audio_signal"})
    message = str(info.value)
    assert "TinyEncoder.input 'length'" in message and "is required" in message
    assert "mapping={'processed_length': 'length'}" in message


def test_rank_and_element_mismatch_name_both_ends():
    with pytest.raises(NeuralTypeError) as info:
        connect(AudioToMel(), RawAudioEncoder())
    message = str(info.value)
    assert message.startswith(
        "AudioToMel.output 'processed_signal' (B, MEL=8, T) MelSpectrogram(n_mels=8) cannot feed "
        "RawAudioEncoder.input 'processed_signal' (B, T) AudioSignal(sample_rate=16000): rank"
    )
    assert "not a kind of AudioSignal" in message and "Hint:" in message


def test_element_mismatch_hints_conversion():
    with pytest.raises(NeuralTypeError) as info:
        connect(TinyCTCDecoder(element=Logits()), CTCLossModule(), mapping=None)
    message = str(info.value)
    assert "TinyCTCDecoder.output 'log_probs'" in message
    assert "CTCLossModule.input 'log_probs'" in message
    assert "log_softmax" in message
    assert "CTCLossModule.input 'targets'" in message  # both problems are reported


def test_sample_rate_mismatch_names_both_rates():
    with pytest.raises(NeuralTypeError) as info:
        check_chain([("mic", AudioSource(8000)), ("frontend", AudioToMel())])
    message = str(info.value)
    assert "stage 0 (mic) -> stage 1 (frontend)" in message
    assert "mic.output 'audio_signal'" in message and "frontend.input 'audio_signal'" in message
    assert "8000 Hz" in message and "16000 Hz" in message and "resample" in message


def test_axis_order_mismatch_suggests_permute():
    with pytest.raises(NeuralTypeError, match=r"permute\(0, 2, 1\)"):
        connect(TimeMajorSpec(), TinyEncoder())


def test_fixed_size_mismatch():
    consumer = NeuralType((B, MEL.sized(80), T), SpectrogramType())
    assert "fixed size 64" in consumer.compare(NeuralType((B, MEL.sized(64), T), SpectrogramType()))


def test_mapping_typo_suggests_name():
    with pytest.raises(NeuralTypeError, match="did you mean 'processed_signal'"):
        connect(AudioToMel(), TinyEncoder(), mapping={"processed_signl": "audio_signal"})


# -- runtime checks ------------------------------------------------------------------------------


def test_runtime_check_passes_on_good_tensors():
    audio, length = _audio()
    with typecheck():
        spec, spec_len = AudioToMel()(audio, length)  # positional arguments are bound by name
        out = TinyEncoder()(audio_signal=spec, length=spec_len)
        TinyCTCDecoder()(encoder_output=out["encoded"])
    assert spec.shape == (2, N_MELS, 8)


def test_runtime_check_catches_wrong_dtype():
    audio, length = _audio()
    with typecheck(), pytest.raises(NeuralTypeError) as info:
        AudioToMel()(audio_signal=audio, length=length.float())
    message = str(info.value)
    assert "AudioToMel.forward input" in message and "'length'" in message
    assert "integer" in message and "torch.float32" in message


def test_runtime_check_catches_wrong_rank():
    audio, length = _audio()
    with typecheck(), pytest.raises(NeuralTypeError, match=r"'audio_signal'.*rank 2.*unsqueeze"):
        AudioToMel()(audio_signal=audio[0], length=length)


def test_runtime_check_catches_inconsistent_batch():
    audio, _ = _audio(batch=2)
    with typecheck(), pytest.raises(NeuralTypeError, match="batch sizes disagree"):
        AudioToMel()(audio_signal=audio, length=torch.tensor([32, 32, 32]))


def test_runtime_check_catches_bad_output():
    with typecheck(), pytest.raises(NeuralTypeError, match=r"BadOutput\.forward output: port 'y'"):
        BadOutput()(x=torch.randn(2, 4))


def test_runtime_check_is_silent_when_disabled():
    audio, length = _audio()
    assert not is_typecheck_enabled()
    spec, _ = AudioToMel()(audio_signal=audio, length=length.float())  # wrong dtype, unchecked
    assert spec.shape == (2, N_MELS, 8)
    with typecheck():
        assert is_typecheck_enabled()
        with typecheck(False):
            BadOutput()(x=torch.randn(2, 4))
        assert is_typecheck_enabled()
    assert not is_typecheck_enabled()


def test_check_tensors_fixed_size_text_and_optional():
    ports = {
        "spec": NeuralType((B, MEL.sized(N_MELS), T), MelSpectrogram()),
        "text": NeuralType((B,), Text()),
        "mask": NeuralType((B, T), Mask(), optional=True),
    }
    check_tensors(ports, {"spec": torch.zeros(2, N_MELS, 3), "text": ["a", "b"]}, where="here")
    with pytest.raises(NeuralTypeError, match=r"here: port 'spec'.*size 8"):
        check_tensors(ports, {"spec": torch.zeros(2, 7, 3), "text": ["a", "b"]}, where="here")
    with pytest.raises(NeuralTypeError, match="batch sizes disagree"):
        check_tensors(ports, {"spec": torch.zeros(2, N_MELS, 3), "text": ["a"]}, where="here")
    with pytest.raises(NeuralTypeError, match=r"'text'.*is required"):
        check_tensors(ports, {"spec": torch.zeros(2, N_MELS, 3)}, where="here")


# -- export helpers ------------------------------------------------------------------------------


def test_export_helpers():
    ports = {
        "text": NeuralType((B,), Text()),
        **AudioToMel().input_ports,
        "tokens": NeuralType((B, TOKEN), TokenIds()),
    }
    assert export_input_names(ports) == ["audio_signal", "length", "tokens"]
    assert dynamic_axes(ports) == {
        "audio_signal": {0: "batch", 1: "time"},
        "length": {0: "batch"},
        "tokens": {0: "batch", 1: "token"},
    }
    assert dynamic_axes(AudioToMel().output_ports) == {
        "processed_signal": {0: "batch", 2: "time"},  # MEL=8 is fixed: never dynamic
        "processed_length": {0: "batch"},
    }
    spec = {"spec": NeuralType((B, MEL, T, T), SpectrogramType())}
    assert dynamic_axes(spec) == {"spec": {0: "batch", 2: "time", 3: "time_2"}}
    assert dynamic_axes(spec, kinds={AxisKind.MEL}) == {"spec": {1: "mel"}}


# -- import weight -------------------------------------------------------------------------------


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )


def test_import_does_not_load_torch():
    result = _run("import convai_core.types, sys; assert 'torch' not in sys.modules")
    assert result.returncode == 0, result.stderr


def test_env_var_enables_checking():
    code = "from convai_core.types import is_typecheck_enabled as e; assert e()"
    result = _run(code, CONVAI_TYPECHECK="1")
    assert result.returncode == 0, result.stderr
