"""NeMo side of ``benchmarks/asr_speed.py``: run with the interpreter of a NeMo peer venv.

Not part of convai and never imported by it: this file runs *only* under a Python where NeMo
3.0.0 is installed (see ``/work/shared/PEERS.md`` and ``benchmarks/README.md``), as a subprocess
started by ``benchmarks/asr_speed.py --peer-python PATH``. It builds NeMo's ``EncDecCTCModel`` from
the configs below (random weights, no data loaders, no hub access), measures the same two
quantities as the convai side with the same shapes, thread settings and number of runs, and
prints one JSON object on stdout (everything else NeMo prints goes to stderr).

The configs are written from NeMo's published recipes, since the wheel ships no example configs:

- ``quartznet_15x5``: ``examples/asr/conf/quartznet/quartznet_15x5.yaml`` (64 mels, 28 labels +
  blank, 18.92M parameters; its SpecCutout ``rect_masks`` augmentation, and the preprocessor's
  default ``pad_to: 16``).
- ``conformer_ctc_small``: ``examples/asr/conf/conformer/conformer_ctc_char.yaml`` with the
  "Small (13M)" row of ``conformer_ctc_bpe.yaml``'s size table (d_model 176, 4 heads, 16 layers,
  5 time masks), 80 mels, and the same 28-character vocabulary as convai, so the CTC head has 29
  outputs on both sides.

Batch legend: B batch, T samples, T' encoder frames, U target tokens, V vocabulary+blank.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]  # 28 characters; blank is id 28
SAMPLE_RATE = 16000


def _quartznet_blocks() -> list[dict[str, Any]]:
    """The 18 blocks of quartznet_15x5.yaml: prologue, 5 groups x 3 blocks x 5 repeats, epilogues."""

    def block(filters: int, kernel: int, *, repeat: int = 5, residual: bool = True, **kw: Any):
        spec = {
            "filters": filters,
            "kernel": [kernel],
            "repeat": repeat,
            "residual": residual,
            "stride": [1],
            "dilation": [1],
            "dropout": 0.0,
            "separable": True,
        }
        spec.update(kw)
        return spec

    blocks = [block(256, 33, repeat=1, residual=False, stride=[2])]
    for filters, kernel in [(256, 33), (256, 39), (512, 51), (512, 63), (512, 75)]:
        blocks += [block(filters, kernel) for _ in range(3)]
    blocks.append(block(512, 87, repeat=1, residual=False, dilation=[2]))
    last = block(1024, 1, repeat=1, residual=False)
    del last["separable"]  # the published epilogue block leaves `separable` at its default
    blocks.append(last)
    return blocks


def quartznet_15x5_config() -> dict[str, Any]:
    """NeMo's published quartznet_15x5.yaml ``model`` section, without data loaders or optim."""
    return {
        "sample_rate": SAMPLE_RATE,
        "labels": LABELS,
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "normalize": "per_feature",
            "window_size": 0.02,
            "sample_rate": SAMPLE_RATE,
            "window_stride": 0.01,
            "window": "hann",
            "features": 64,
            "n_fft": 512,
            "frame_splicing": 1,
            "dither": 0.00001,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "rect_freq": 50,
            "rect_masks": 5,
            "rect_time": 120,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 64,
            "activation": "relu",
            "conv_mask": True,
            "jasper": _quartznet_blocks(),
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": 1024,
            "num_classes": len(LABELS),
            "vocabulary": LABELS,
        },
    }


def conformer_ctc_small_config() -> dict[str, Any]:
    """conformer_ctc_char.yaml at the published "Small (13M)" size, without data loaders."""
    return {
        "sample_rate": SAMPLE_RATE,
        "labels": LABELS,
        "ctc_reduction": "mean_batch",
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": SAMPLE_RATE,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": 80,
            "n_fft": 512,
            "log": True,
            "frame_splicing": 1,
            "dither": 0.00001,
            "pad_to": 0,
            "pad_value": 0.0,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2,
            "time_masks": 5,
            "freq_width": 27,
            "time_width": 0.05,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 80,
            "feat_out": -1,
            "n_layers": 16,
            "d_model": 176,
            "subsampling": "striding",
            "subsampling_factor": 4,
            "subsampling_conv_channels": -1,
            "causal_downsampling": False,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": 4,
            "att_context_size": [-1, -1],
            "att_context_style": "regular",
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 5000,
            "conv_kernel_size": 31,
            "conv_norm_type": "batch_norm",
            "conv_context_size": None,
            "dropout": 0.1,
            "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0,
            "dropout_att": 0.1,
            "stochastic_depth_drop_prob": 0.0,
            "stochastic_depth_mode": "linear",
            "stochastic_depth_start_layer": 1,  # NeMo 3 rejects the old yaml's 0
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": None,
            "num_classes": -1,
            "vocabulary": LABELS,
        },
        "interctc": {"loss_weights": [], "apply_at_layers": []},
    }


CONFIGS: dict[str, Callable[[], dict[str, Any]]] = {
    "quartznet_15x5": quartznet_15x5_config,
    "conformer_ctc_small": conformer_ctc_small_config,
}


def _timed(fn: Callable[[], object], *, runs: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "all": times}


def _conv_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: list[bool],
    out_shape: Any = None,
    **kwargs: Any,
) -> int:
    """FLOPs of ``aten.convolution_backward``, grouped convolutions counted right.

    torch's own formula (2.13, 2.14) counts the weight gradient of a grouped convolution as if it
    were dense: a depthwise convolution's ``groups`` times over, which makes QuartzNet's backward
    pass look 15x larger than it is. The weight gradient costs as many multiply-adds as the
    forward convolution; the input gradient is torch's formula (it reads the grouped weight shape).
    """
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, list(out_shape[0]), not transposed)
    if output_mask[1]:
        flops += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return flops


def flop_counter() -> Any:
    """A ``FlopCounterMode`` with the grouped-convolution backward formula above."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def measure(name: str, *, runs: int, warmup: int, count_flops: bool, seed: int) -> dict[str, Any]:
    import torch
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    model = EncDecCTCModel(cfg=OmegaConf.create(CONFIGS[name]()), trainer=None)
    vocab_size = len(LABELS)  # blank is the last id (NeMo's convention), excluded from targets
    gen = torch.Generator().manual_seed(seed)

    # forward: 8 x 10 s, inference mode
    audio = torch.randn(8, 10 * SAMPLE_RATE, generator=gen) * 0.1  # (B, T)
    audio_len = torch.full((8,), audio.shape[1], dtype=torch.long)  # (B,)
    model.eval()

    def forward() -> None:
        with torch.inference_mode():
            model(input_signal=audio, input_signal_length=audio_len)

    fwd = _timed(forward, runs=runs, warmup=warmup)
    fwd_flops = None
    if count_flops:
        with flop_counter() as counter:
            forward()
        fwd_flops = counter.get_total_flops()

    # training step: 4 x 5 s, SpecAugment on, NeMo's own CTC loss, AdamW
    t_audio = torch.randn(4, 5 * SAMPLE_RATE, generator=gen) * 0.1  # (B, T)
    t_audio_len = torch.full((4,), t_audio.shape[1], dtype=torch.long)  # (B,)
    tokens_len = torch.randint(45, 56, (4,), generator=gen)  # (B,), about 50 characters
    tokens = torch.randint(0, vocab_size, (4, int(tokens_len.max())), generator=gen)  # (B, U)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def loss_backward() -> None:
        log_probs, enc_len, _ = model(input_signal=t_audio, input_signal_length=t_audio_len)
        loss = model.loss(
            log_probs=log_probs, targets=tokens, input_lengths=enc_len, target_lengths=tokens_len
        )
        loss.backward()

    def train_step() -> None:
        loss_backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    train = _timed(train_step, runs=runs, warmup=warmup)
    train_flops = None
    if count_flops:
        with flop_counter() as counter:
            loss_backward()
        optimizer.zero_grad(set_to_none=True)
        train_flops = counter.get_total_flops()

    return {
        "params": sum(p.numel() for p in model.parameters()),
        "forward_8x10s": fwd["median"],
        "train_step_4x5s": train["median"],
        "flops": {"forward_8x10s": fwd_flops, "train_step_4x5s": train_flops},
        "runs": {"forward_8x10s": fwd, "train_step_4x5s": train},
    }


def matmul_gflops(*, n: int = 2048, runs: int = 5) -> float:
    """Median float32 throughput of an n x n matmul (2 n^3 flops), in GFLOP/s."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    stats = _timed(lambda: a @ b, runs=max(runs, 5), warmup=1)
    return 2 * n**3 / stats["median"] / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP counting pass")
    args = parser.parse_args(argv)

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    stdout = sys.stdout
    result: dict[str, Any] = {}
    # NeMo and Lightning print banners and warnings on stdout: send them to stderr, so that
    # stdout carries only the JSON result.
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        import nemo
        import nemo.collections.asr  # timed: the 8-9 s import of PEERS.md

        result["machine"] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nemo": nemo.__version__,
            "threads": torch.get_num_threads(),
            "nemo_import_s": round(time.perf_counter() - start, 2),
        }
        result["matmul_gflops"] = matmul_gflops(runs=args.runs)
        result["models"] = {}
        for name in args.models:
            print(f"peer: measuring NeMo {name}", file=sys.stderr, flush=True)
            result["models"][name] = measure(
                name,
                runs=args.runs,
                warmup=args.warmup,
                count_flops=not args.no_flops,
                seed=args.seed,
            )
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
