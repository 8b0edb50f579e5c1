"""Export speed on CPU: convai's eager model against its ONNX (onnxruntime) and TorchScript
exports, the torch-free runtime end to end, and NeMo's own ONNX export, in the same run.

For each architecture (``quartznet_15x5``, ``conformer_ctc_small``, random weights from the shipped
configs) it exports with ``model.export`` (each export verified against the eager model first) and
measures, with ``--threads`` threads (torch and onnxruntime intra-op), the median and minimum of
``--rounds`` x ``--runs`` runs (each round after one warm-up; rounds alternate convai and the
peer, and their runs are pooled), on 8 x 10 s of 16 kHz noise (normal x 0.1, the same draw as
``asr_speed.py`` and the peer):

- ``eager``: ``model(audio, length)`` in eval mode under ``torch.inference_mode()``;
- ``onnxruntime``: the ONNX graph of the ``asr-bundle`` export (the same as the ``onnx`` format:
  mel preprocessor inside the graph), audio in;
- ``onnxruntime_features``: the ``trt-onnx`` export (features in, the same graph boundary as
  NeMo's export), on features computed beforehand by the model's preprocessor;
- ``torchscript``: the traced ``torchscript`` export, audio in;
- ``runtime_end_to_end``: ``convai_asr_runtime.Bundle.transcribe`` (convai-asr-runtime) on the 8
  files written as 16-bit WAV: reading, features, graph, greedy decoding and word timestamps;
- ``peer_onnxruntime`` (with ``--peer-python``): NeMo 3.0.0's ``model.export`` of the same
  architecture (features in) run by onnxruntime with the same settings, by
  ``peers/nemo_export_speed.py``.

The issue's target: convai's ONNX forward takes at most 1.0x NeMo's; the table compares the
like-for-like graphs (``onnxruntime_features`` / ``peer_onnxruntime``) and also shows the
full-graph ratio.

The JSON holds, under ``models.<architecture>``, the medians in seconds as ``eager``,
``onnxruntime``, ``onnxruntime_features``, ``torchscript``, ``runtime_end_to_end`` and
``peer_onnxruntime``, every run under ``runs``, export times and verification differences.

    python benchmarks/export_speed.py --peer-python /work/peer-venv/bin/python --json export.json
    python benchmarks/export_speed.py --quick --models conformer_ctc_small
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asr_speed import (
    MODELS,
    SAMPLE_RATE,
    _command,
    build_convai_model,
    machine_info,
    run_peer,
    timed,
)

PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "nemo_export_speed.py"
TARGET = 1.0
MEASURES = ("eager", "onnxruntime", "onnxruntime_features", "torchscript", "runtime_end_to_end")


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def prepare_convai(name: str, *, threads: int, seed: int, work: Path) -> tuple[dict, Any]:
    """Export convai's ``name`` (each export verified); returns its entry and a function that
    times every measure once per call (``measure(runs, warmup) -> {measure: stats}``)."""
    import time

    import numpy as np
    import soundfile as sf
    import torch

    from convai_asr_runtime import Bundle

    torch.manual_seed(seed)
    model = build_convai_model(name).eval()
    gen = torch.Generator().manual_seed(seed)  # the peer draws the same audio
    audio = torch.randn(8, 10 * SAMPLE_RATE, generator=gen) * 0.1  # (B, T)
    length = torch.full((8,), audio.shape[1], dtype=torch.long)  # (B,)
    with torch.inference_mode():
        features, feature_len = model.preprocessor(audio, length)  # (B, F, T'), (B,)
    entry: dict[str, Any] = {"export_s": {}, "max_abs_diff": {}}

    def export(fmt: str, out: str) -> Path:
        start = time.perf_counter()
        report = model.export(work / out, format=fmt, force=True, threads=threads)
        entry["export_s"][fmt] = round(time.perf_counter() - start, 2)
        entry["max_abs_diff"][fmt] = report.max_abs_diff
        return work / out

    bundle_dir = export("asr-bundle", f"{name}_bundle")  # its model.onnx is the onnx export
    trt_dir = export("trt-onnx", f"{name}_trt")
    ts_path = export("torchscript", f"{name}.pt")
    full = _session(bundle_dir / "model.onnx", threads)
    feeds = {"audio_signal": audio.numpy(), "length": length.numpy()}
    feat = _session(trt_dir / "model.onnx", threads)
    feat_feeds = {"processed_signal": features.numpy(), "processed_length": feature_len.numpy()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.load(str(ts_path))
    files = []
    for i in range(8):
        files.append(work / f"{name}_noise_{i}.wav")
        sf.write(files[-1], np.clip(audio[i].numpy(), -1, 1), SAMPLE_RATE, subtype="PCM_16")
    bundle = Bundle(bundle_dir, threads=threads)
    entry["params"] = sum(p.numel() for p in model.parameters())

    def eager() -> None:
        with torch.inference_mode():
            model(audio, length)

    def script() -> None:
        with torch.inference_mode():
            traced(audio, length)

    calls = {
        "eager": eager,
        "onnxruntime": lambda: full.run(None, feeds),
        "onnxruntime_features": lambda: feat.run(None, feat_feeds),
        "torchscript": script,
        "runtime_end_to_end": lambda: bundle.transcribe(files, batch_size=8),
    }

    def measure(runs: int, warmup: int) -> dict[str, Any]:
        return {key: timed(fn, runs=runs, warmup=warmup) for key, fn in calls.items()}

    return entry, measure


def _pool(entry: dict[str, Any], key: str, stats: dict[str, Any]) -> None:
    """Add one round's runs of ``key`` to ``entry["runs"]``; ``entry[key]`` is their median."""
    pooled = entry.setdefault("runs", {})
    runs = [*(pooled.get(key) or {}).get("all", []), *stats["all"]]
    pooled[key] = {"median": statistics.median(runs), "min": min(runs), "all": runs}
    entry[key] = pooled[key]["median"]


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'model':<20} {'measure':<22} {'median s':>9} {'min s':>8} {'x eager':>8} {'x NeMo':>8}",
    ]
    for name, entry in result["models"].items():
        runs = entry["runs"]
        eager = runs["eager"]["median"]
        peer = (runs.get("peer_onnxruntime") or {}).get("median")
        for measure in (*MEASURES, "peer_onnxruntime"):
            stats = runs.get(measure)
            if not stats:
                continue
            ratio = ""
            if peer and measure in ("onnxruntime", "onnxruntime_features"):
                ratio = f"{stats['median'] / peer:.2f}"
            lines.append(
                f"{name:<20} {measure:<22} {stats['median']:>9.3f} {stats['min']:>8.3f} "
                f"{stats['median'] / eager:>8.2f} {ratio:>8}"
            )
        verdict = entry.get("target")
        if verdict:
            lines.append(f"{'':<20} target: ONNX forward <= {TARGET}x NeMo's -> {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate convai and the peer; pool the runs"
    )
    parser.add_argument("--quick", action="store_true", help="development: 1 run, no warm-up")
    parser.add_argument("--peer-python", metavar="PATH", help="Python of a NeMo venv (README)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.rounds = 1, 0, 1
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import onnxruntime

    result: dict[str, Any] = {
        "machine": {**machine_info(args.threads), "onnxruntime": onnxruntime.__version__},
        "settings": {
            "runs": args.runs,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "seed": args.seed,
        },
        "models": {},
        "command": _command(),
    }
    with tempfile.TemporaryDirectory(prefix="convai_export_bench_") as tmp:
        measures = {}
        for name in args.models:
            print(f"convai: exporting {name} (each export verified)", file=sys.stderr, flush=True)
            result["models"][name], measures[name] = prepare_convai(
                name, threads=args.threads, seed=args.seed, work=Path(tmp)
            )
        # Rounds alternate convai and the peer, so that a slow spell of this shared machine
        # falls on both sides; the runs of all rounds are pooled before the median is taken.
        for round_index in range(args.rounds):
            for name in args.models:
                print(f"convai: measuring {name} (round {round_index + 1})", file=sys.stderr)
                for key, stats in measures[name](args.runs, args.warmup).items():
                    _pool(result["models"][name], key, stats)
            if not args.peer_python:
                continue
            print(f"peer: NeMo export + onnxruntime (round {round_index + 1})", file=sys.stderr)
            peer = run_peer(
                args.peer_python,
                models=args.models,
                runs=args.runs,
                warmup=args.warmup,
                threads=args.threads,
                seed=args.seed,
                count_flops=None,
                script=PEER_SCRIPT,
            )
            result["peer"] = {"versions": peer.get("versions"), "settings": peer.get("settings")}
            for name in args.models:
                entry = result["models"][name]
                stats = dict(peer[name]["onnxruntime"])
                _pool(entry, "peer_onnxruntime", {"all": stats["runs"]})
                entry["peer_export_s"] = peer[name].get("export_s")
    for name in args.models if args.peer_python else ():
        entry = result["models"][name]
        ratio = entry["onnxruntime_features"] / entry["peer_onnxruntime"]
        entry["ratio_onnxruntime_vs_peer"] = ratio
        entry["ratio_full_graph_vs_peer"] = entry["onnxruntime"] / entry["peer_onnxruntime"]
        entry["target"] = "PASS" if ratio <= TARGET else "FAIL"
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    table = format_table(result)
    print(table)
    print(f"\ncommand: {result['command']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp_json = args.json.with_name(f".{args.json.name}.tmp")
        tmp_json.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp_json, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
