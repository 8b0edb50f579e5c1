"""Build the NeMo parity fixtures of ``convai import nemo`` (run once, in a NeMo side venv).

Not part of the test suite and never imported by convai: it needs ``nemo_toolkit[asr]``, which
convai does not depend on. ``benchmarks/peers/README.md`` and ../shared/PEERS.md show how to
install NeMo 3.0 in a separate venv; then::

    PEER_VENV/bin/python tools/nemo_parity_fixtures.py packages/convai-asr/tests/data/nemo
    PEER_VENV/bin/python tools/nemo_parity_fixtures.py --full-size /tmp/nemo_full   # not committed

For each supported kind (QuartzNet and Citrinet from ``ConvASREncoder``, Conformer-CTC with a
character and with a SentencePiece vocabulary) the script builds a tiny ``EncDecCTCModel`` /
``EncDecCTCModelBPE``, overwrites *every* parameter and buffer with random values (BatchNorm
statistics, ``pos_bias_u``/``pos_bias_v`` and squeeze-excite weights included, so that an
importer that drops or misplaces a tensor cannot match), saves it with NeMo's own ``save_to`` and
writes ``<kind>.npz`` with NeMo's features, feature lengths, log-probabilities, output lengths
and greedy transcripts for the two waveforms of ``waveforms.npz`` (different lengths, run as one
padded batch, the way NeMo transcribes). The convai tests compare an imported model against
these files.

``--full-size`` writes the published models instead (QuartzNet 15x5, 18.9M parameters, and
Conformer-CTC small, 13.0M, with the configs of ``benchmarks/peers/nemo_asr_speed.py``) with
NeMo's own initialization and BatchNorm statistics measured on two
real recordings (pocketsphinx-testdata), for ``benchmarks/nemo_parity.py --fixtures``. Random deep
networks are chaotic: a rounding difference at the input grows layer by layer, so beside NeMo's
outputs the file records how far NeMo differs from itself between 1 and 2 threads
(``nemo_thread_diff``), the scale against which convai's difference is read.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16000
LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]
SP_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a speech recognizer turns sound into words",
    "she sells sea shells by the sea shore",
    "every model is imported without running its pickle",
    "numbers like seven and eleven are spelled out",
]


def waveforms() -> tuple[np.ndarray, np.ndarray]:
    """Two deterministic speech-like signals (harmonics under moving formants, noise bursts),
    0.93 s and 0.61 s, quantized to 16 bit as real recordings are."""
    rng = np.random.default_rng(20261203)
    out = []
    for seconds, f0 in ((0.93, 118.0), (0.61, 205.0)):
        n = int(seconds * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        pitch = f0 * (1 + 0.08 * np.sin(2 * math.pi * 3.1 * t))
        phase = 2 * math.pi * np.cumsum(pitch) / SAMPLE_RATE
        formant = 700 + 500 * np.sin(2 * math.pi * 1.7 * t)
        voiced = sum(
            np.sin(k * phase) * np.exp(-(((k * pitch - formant) / 400.0) ** 2))
            for k in range(1, 30)
        )
        envelope = 0.5 + 0.5 * np.sin(2 * math.pi * 2.3 * t) ** 2
        noise = rng.normal(0, 0.05, n) * (np.sin(2 * math.pi * 0.9 * t) > 0.6)
        signal = 0.3 * voiced * envelope + noise
        signal = signal / np.abs(signal).max() * 0.7
        out.append(np.round(signal * 32767).astype(np.int16))
    return out[0], out[1]


def preprocessor(features: int, pad_to: int) -> dict:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": SAMPLE_RATE,
        "normalize": "per_feature",
        "window_size": 0.025,
        "window_stride": 0.01,
        "window": "hann",
        "features": features,
        "n_fft": 512,
        "log": True,
        "frame_splicing": 1,
        "dither": 1.0e-5,
        "pad_to": pad_to,
        "pad_value": 0.0,
    }


def jasper_block(filters, repeat, kernel, stride=1, dilation=1, residual=False, **extra) -> dict:
    return {
        "filters": filters,
        "repeat": repeat,
        "kernel": [kernel],
        "stride": [stride],
        "dilation": [dilation],
        "dropout": 0.0,
        "residual": residual,
        "separable": True,
        **extra,
    }


def quartznet_config() -> dict:
    blocks = [
        jasper_block(24, 1, 11, stride=2),
        jasper_block(24, 2, 13, residual=True),
        jasper_block(32, 2, 15, residual=True),
        jasper_block(32, 1, 17, dilation=2),
        jasper_block(48, 1, 1),
    ]
    return {
        "sample_rate": SAMPLE_RATE,
        "labels": LABELS,
        "preprocessor": preprocessor(64, 16),
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 64,
            "activation": "relu",
            "conv_mask": True,
            "jasper": blocks,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 48,
            "num_classes": len(LABELS),
            "vocabulary": LABELS,
        },
    }


def citrinet_config(tokenizer_dir: str) -> dict:
    se = {"se": True, "se_context_size": -1, "kernel_size_factor": 1.0}
    blocks = [
        jasper_block(24, 1, 5, **se),
        jasper_block(
            24, 3, 7, stride=2, residual=True, stride_last=True, residual_mode="stride_add", **se
        ),
        jasper_block(24, 2, 9, residual=True, **se),
        jasper_block(
            32, 2, 11, stride=2, residual=True, stride_last=True, residual_mode="stride_add", **se
        ),
        jasper_block(32, 1, 13, **se),
    ]
    return {
        "sample_rate": SAMPLE_RATE,
        "tokenizer": {"dir": tokenizer_dir, "type": "bpe"},
        "preprocessor": preprocessor(80, 16),
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 80,
            "activation": "relu",
            "conv_mask": True,
            "jasper": blocks,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 32,
            "num_classes": -1,
            "vocabulary": [],
        },
    }


def conformer_encoder() -> dict:
    return {
        "_target_": "nemo.collections.asr.modules.ConformerEncoder",
        "feat_in": 64,
        "feat_out": -1,
        "n_layers": 2,
        "d_model": 16,
        "subsampling": "striding",
        "subsampling_factor": 4,
        "subsampling_conv_channels": 4,
        "ff_expansion_factor": 2,
        "self_attention_model": "rel_pos",
        "n_heads": 2,
        "att_context_size": [-1, -1],
        "xscaling": True,
        "untie_biases": True,
        "pos_emb_max_len": 5000,
        "conv_kernel_size": 7,
        "conv_norm_type": "batch_norm",
        "dropout": 0.0,
        "dropout_pre_encoder": 0.0,
        "dropout_emb": 0.0,
        "dropout_att": 0.0,
    }


def conformer_char_config() -> dict:
    return {
        "sample_rate": SAMPLE_RATE,
        "labels": LABELS,
        "preprocessor": preprocessor(64, 0),
        "encoder": conformer_encoder(),
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 16,
            "num_classes": len(LABELS),
            "vocabulary": LABELS,
        },
    }


def conformer_bpe_config(tokenizer_dir: str) -> dict:
    return {
        "sample_rate": SAMPLE_RATE,
        "tokenizer": {"dir": tokenizer_dir, "type": "bpe"},
        "preprocessor": preprocessor(64, 0),
        "encoder": conformer_encoder(),
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 16,
            "num_classes": -1,
            "vocabulary": [],
        },
    }


def train_tokenizer(folder: Path) -> str:
    """A 40-piece SentencePiece BPE model with NeMo's files (tokenizer.model, vocab.txt)."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SP_TEXT * 4),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=40,
        model_type="bpe",
        character_coverage=1.0,
        normalization_rule_name="identity",  # no 200 KB NFKC table in the committed fixture
        bos_id=-1,
        eos_id=-1,
        num_threads=1,
    )
    processor = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    (folder / "vocab.txt").write_text("".join(f"{p}\n" for p in pieces), encoding="utf-8")
    return str(folder)


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter and floating buffer gets new random values: weights ~ N(0, 2.25/fan_in)
    (activations stay in range), norms' scales around 1, biases, BatchNorm statistics and
    positional biases clearly non-zero."""
    generator = torch.Generator().manual_seed(seed)
    saved = set(model.state_dict())  # not the non-persistent buffers (positional tables)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.startswith("preprocessor.") or not tensor.is_floating_point():
                continue
            if name not in saved:
                continue
            shape = tensor.shape
            if name.endswith("running_var"):
                values = 0.5 + torch.rand(shape, generator=generator)
            elif name.endswith("running_mean"):
                values = 0.2 * torch.randn(shape, generator=generator)
            elif tensor.dim() == 1 and name.endswith(".weight"):  # normalization scales
                values = 0.7 + 0.6 * torch.rand(shape, generator=generator)
            elif tensor.dim() == 1:
                values = 0.1 * torch.randn(shape, generator=generator)
            elif "pos_bias" in name:
                values = 0.5 * torch.randn(shape, generator=generator)
            else:
                fan_in = tensor[0].numel()
                values = 1.5 * torch.randn(shape, generator=generator) / math.sqrt(fan_in)
            tensor.copy_(values)


def sharpen_ctc_layer(model, batch: torch.Tensor, lengths: torch.Tensor) -> None:
    """Scale the CTC layer's weight so that its logits have a standard deviation of 5 on the
    batch: the outputs then follow the input (flat log-probs would make the greedy transcripts
    a weak check) while staying small enough (tens) for a 1e-4 comparison in float32."""
    model.eval()
    with torch.inference_mode():
        features, feature_lengths = model.preprocessor(input_signal=batch, length=lengths)
        encoded, _ = model.encoder(audio_signal=features, length=feature_lengths)
        layer = model.decoder.decoder_layers[0]
        logits = torch.nn.functional.conv1d(encoded, layer.weight)
    with torch.no_grad():
        layer.weight.mul_(5.0 / float(logits.std()))


def run(model, batch: torch.Tensor, lengths: torch.Tensor) -> dict:
    model.eval()
    with torch.inference_mode():
        features, feature_lengths = model.preprocessor(input_signal=batch, length=lengths)
        encoded, encoded_lengths = model.encoder(audio_signal=features, length=feature_lengths)
        log_probs = model.decoder(encoder_output=encoded)
        hyps = model.decoding.ctc_decoder_predictions_tensor(
            log_probs, decoder_lengths=encoded_lengths, return_hypotheses=False
        )
    texts = [
        h.text if hasattr(h, "text") else h for h in (hyps[0] if isinstance(hyps, tuple) else hyps)
    ]
    return {
        "features": features.numpy(),
        "feature_lengths": feature_lengths.numpy(),
        "log_probs": log_probs.numpy(),
        "encoded_lengths": encoded_lengths.numpy(),
        "transcripts": np.array(texts, dtype=object).astype(str),
    }


RECORDINGS = Path("/usr/share/pocketsphinx/test/data/librivox")
PEER_BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks/peers/nemo_asr_speed.py"


def _peer_configs() -> Any:
    """benchmarks/peers/nemo_asr_speed.py as a module (it runs in the same NeMo venv)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nemo_asr_speed", PEER_BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def full_size(out: Path) -> None:
    """QuartzNet 15x5 and Conformer-CTC small at their published sizes (see the docstring)."""
    import soundfile as sf
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(RECORDINGS.glob("*.wav"))[:2]
    waves = [sf.read(f, dtype="int16")[0] for f in files]
    np.savez_compressed(out / "waveforms.npz", first=waves[0], second=waves[1])
    batch = torch.zeros(2, max(len(w) for w in waves))
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = torch.from_numpy(wave.astype(np.float32) / 32768.0)
    lengths = torch.tensor([len(w) for w in waves])
    peers = _peer_configs()  # NeMo's published configs, as the speed benchmark writes them
    quartznet, conformer = peers.quartznet_15x5_config(), peers.conformer_ctc_small_config()
    for kind, cfg in (("quartznet_15x5", quartznet), ("conformer_ctc_small", conformer)):
        torch.manual_seed(0)
        model = EncDecCTCModel(cfg=OmegaConf.create(cfg))
        for module in model.modules():  # statistics of real speech, as training leaves them
            if isinstance(module, torch.nn.BatchNorm1d):
                module.reset_running_stats()
                module.momentum = None
        model.train()
        with torch.no_grad():  # (NeMo's dither writes into its input: give it a copy)
            features, frames = model.preprocessor(input_signal=batch.clone(), length=lengths)
            model.encoder(audio_signal=features, length=frames)
        sharpen_ctc_layer(model, batch, lengths)
        result = run(model, batch, lengths)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        alone = run(model, batch, lengths)["log_probs"]
        torch.set_num_threads(threads)
        result["nemo_thread_diff"] = np.array(np.abs(alone - result["log_probs"]).max())
        model.save_to(str(out / f"{kind}.nemo"))
        np.savez_compressed(out / f"{kind}.npz", **result)
        params = sum(p.numel() for p in model.parameters())
        print(kind, params, "NeMo 1 vs 2 threads:", float(result["nemo_thread_diff"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="folder for the .nemo and .npz files")
    parser.add_argument(
        "--full-size", action="store_true", help="QuartzNet 15x5 and Conformer-CTC small instead"
    )
    args = parser.parse_args()
    if args.full_size:
        full_size(args.output)
        return
    from nemo.collections.asr.models import EncDecCTCModel, EncDecCTCModelBPE
    from omegaconf import OmegaConf

    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    first, second = waveforms()
    np.savez_compressed(out / "waveforms.npz", first=first, second=second)
    batch = torch.zeros(2, len(first))
    batch[0] = torch.from_numpy(first.astype(np.float32) / 32768.0)
    batch[1, : len(second)] = torch.from_numpy(second.astype(np.float32) / 32768.0)
    lengths = torch.tensor([len(first), len(second)])
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = train_tokenizer(Path(tmp) / "tokenizer")
        kinds = {
            "quartznet": (EncDecCTCModel, quartznet_config()),
            "citrinet_bpe": (EncDecCTCModelBPE, citrinet_config(tokenizer_dir)),
            "conformer_char": (EncDecCTCModel, conformer_char_config()),
            "conformer_bpe": (EncDecCTCModelBPE, conformer_bpe_config(tokenizer_dir)),
        }
        for seed, (kind, (cls, cfg)) in enumerate(kinds.items()):
            torch.manual_seed(seed)
            model = cls(cfg=OmegaConf.create(cfg))
            randomize(model, seed=1000 + seed)
            sharpen_ctc_layer(model, batch, lengths)
            result = run(model, batch, lengths)
            model.save_to(str(out / f"{kind}.nemo"))
            np.savez_compressed(out / f"{kind}.npz", **result)
            params = sum(p.numel() for p in model.parameters())
            summary[kind] = {
                "class": cls.__name__,
                "parameters": params,
                "transcripts": result["transcripts"].tolist(),
                "nemo_bytes": (out / f"{kind}.nemo").stat().st_size,
            }
            print(kind, json.dumps(summary[kind]))
    import nemo

    (out / "README.md").write_text(
        "# NeMo parity fixtures\n\n"
        f"Written by `tools/nemo_parity_fixtures.py` with NeMo {nemo.__version__} and torch "
        f"{torch.__version__}: tiny random models saved by NeMo's `save_to`, and NeMo's "
        "features, log-probabilities and greedy transcripts of the two waveforms in "
        "`waveforms.npz`, run as one padded batch. Every parameter and buffer is random.\n\n"
        + "".join(
            f"- `{kind}.nemo`: {info['class']}, {info['parameters']:,} parameters, "
            f"transcripts {info['transcripts']}\n"
            for kind, info in summary.items()
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
