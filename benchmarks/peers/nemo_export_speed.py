"""NeMo ONNX export + onnxruntime speed: run with the interpreter of a NeMo peer venv.

Not part of convai and never imported by it: like ``nemo_asr_speed.py`` beside it (whose model
configs it imports), this file runs *only* under a Python where NeMo 3.0.0, onnx and onnxruntime
are installed (see ``benchmarks/README.md``, "The NeMo peer", plus
``pip install -c /work/peer-constraints.txt onnxruntime onnx``).

For each model it builds NeMo's ``EncDecCTCModel`` with random weights (same seed as
``nemo_asr_speed.py``), puts it in eval mode, exports it to ONNX with NeMo's own
``model.export(path)`` (encoder + CTC decoder: mel features in, log-probabilities out; NeMo's
defaults: opset 17, TorchScript-based ``torch.onnx.export``, dynamic batch and time axes from the
modules' neural types), and times the session creation and the runs of an onnxruntime
``InferenceSession`` (CPU, ``--threads`` intra-op threads, 1 inter-op thread, sequential
execution, default graph optimizations) on the mel features of 8 x 10 s of 16 kHz noise
(normal x 0.1), computed by the model's own preprocessor. It checks the onnxruntime output
against the torch model's log-probabilities on the same features.

The graphs' inputs differ: QuartzNet's export turns its masked convolutions off, so its graph
takes ``audio_signal`` only (``length`` is unused and dropped); Conformer's takes
``audio_signal`` and ``length``. Both output ``logprobs``.

Prints one JSON object on stdout; everything else goes to stderr.

Batch legend: B batch, T samples, F mel bins, T' feature frames, T'' encoder frames, V vocab+blank.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nemo_asr_speed import CONFIGS, SAMPLE_RATE, _timed  # same folder


def _session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # graph_optimization_level left at its default (ORT_ENABLE_ALL)
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def _feeds(session: Any, feats: Any, feat_len: Any) -> dict[str, Any]:
    """Map the graph's inputs (expected ``audio_signal``, ``length``) to numpy arrays."""
    import numpy as np

    by_name = {"audio_signal": feats, "length": feat_len}
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    feeds = {}
    for inp in session.get_inputs():
        if inp.name not in by_name:
            raise RuntimeError(f"unexpected ONNX input {inp.name!r} ({inp.type}, {inp.shape})")
        feeds[inp.name] = by_name[inp.name].numpy().astype(types[inp.type])
    return feeds


def measure(name: str, *, workdir: Path, runs: int, warmup: int, threads: int, seed: int) -> dict:
    import numpy as np
    import onnx
    import torch
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    model = EncDecCTCModel(cfg=OmegaConf.create(CONFIGS[name]()), trainer=None)
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn(8, 10 * SAMPLE_RATE, generator=gen) * 0.1  # (B, T)
    audio_len = torch.full((8,), audio.shape[1], dtype=torch.long)  # (B,)
    model.eval()
    with torch.inference_mode():
        # (B, F, T') mel features and (B,) frame counts, from the model's own preprocessor
        feats, feat_len = model.preprocessor(input_signal=audio, length=audio_len)
        # reference: the torch model's log-probabilities on the same features
        ref_log_probs, _, _ = model(processed_signal=feats, processed_signal_length=feat_len)
    ref = ref_log_probs.numpy()  # (B, T'', V)

    path = workdir / f"{name}.onnx"
    start = time.perf_counter()
    exported, _ = model.export(str(path))
    export_s = time.perf_counter() - start
    path = Path(exported[0])

    graph = onnx.load(str(path), load_external_data=False)
    opset = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    init_names = {i.name for i in graph.graph.initializer}
    input_names = [i.name for i in graph.graph.input if i.name not in init_names]
    output_names = [o.name for o in graph.graph.output]

    start = time.perf_counter()
    session = _session(str(path), threads)
    session_s = time.perf_counter() - start
    feeds = _feeds(session, feats, feat_len)
    outputs: list[Any] = []

    def infer() -> None:
        outputs[:] = session.run(None, feeds)

    times = _timed(infer, runs=runs, warmup=warmup)  # `warmup` untimed runs, then `runs` timed
    out = outputs[0]  # (B, T'', V) log-probabilities of the last run

    return {
        "onnxruntime": {"median": times["median"], "min": times["min"], "runs": times["all"]},
        "export_s": export_s,
        "session_s": session_s,
        "input_names": input_names,
        "output_names": output_names,
        "onnx_opset": opset,
        "onnx_mb": round(sum(f.stat().st_size for f in path.parent.iterdir()) / 2**20, 1),
        "feature_shape": list(feats.shape),
        "output_shape": list(out.shape),
        "max_abs_diff_vs_torch": float(np.abs(out - ref).max()) if out.shape == ref.shape else None,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the .onnx files go (kept); default: a temporary directory",
    )
    parser.add_argument("--quick", action="store_true", help="--runs 1 --warmup 0")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 1, 0

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    stdout = sys.stdout
    result: dict[str, Any] = {}
    # NeMo and Lightning print banners and warnings on stdout: send them to stderr, so that
    # stdout carries only the JSON result.
    with contextlib.redirect_stdout(sys.stderr), contextlib.ExitStack() as stack:
        import numpy
        import onnx
        import onnxruntime
        import torch

        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        import nemo
        import nemo.collections.asr  # timed, as in nemo_asr_speed.py

        nemo_import_s = time.perf_counter() - start
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nemo_onnx_")))
        else:
            workdir = args.workdir
        for name in args.models:
            print(f"peer: exporting NeMo {name} to ONNX in {workdir}", file=sys.stderr, flush=True)
            (workdir / name).mkdir(parents=True, exist_ok=True)
            result[name] = measure(
                name,
                workdir=workdir / name,
                runs=args.runs,
                warmup=args.warmup,
                threads=args.threads,
                seed=args.seed,
            )
        result["versions"] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nemo": nemo.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": numpy.__version__,
        }
        result["settings"] = {
            "runs": args.runs,
            "warmup": args.warmup,
            "threads": args.threads,
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
            "nemo_import_s": round(nemo_import_s, 2),
            "load_average_end": list(os.getloadavg()),
        }
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
