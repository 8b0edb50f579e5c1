"""How closely models imported by ``convai import nemo`` reproduce NeMo: a table and JSON.

Reads the parity fixtures NeMo 3.0 wrote (``packages/convai-asr/tests/data/nemo``, made by
``tools/nemo_parity_fixtures.py``), imports each ``.nemo`` into a ``.convai`` archive, restores
it, runs the two fixture waveforms as one padded batch, and compares with NeMo's own outputs:
largest feature difference, largest log-probability difference over the valid frames, equal
lengths, equal greedy transcripts (through ``model.transcribe`` on 16-bit WAV files), and the
import and first-inference times.

    python benchmarks/nemo_parity.py [--json OUT]
    python benchmarks/nemo_parity.py --fixtures /tmp/nemo_full [--json OUT]   # --full-size ones

Fixtures with ``nemo_thread_diff`` (full-size models) also show how far NeMo's log-probs move
between 1 and 2 threads: random deep networks amplify rounding, and that is the scale to read
convai's difference against.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "packages/convai-asr/tests/data/nemo"
KINDS = [
    "quartznet",
    "citrinet_bpe",
    "conformer_char",
    "conformer_bpe",
    "quartznet_15x5",
    "conformer_ctc_small",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="fixture folder")
    args = parser.parse_args()
    fixtures: Path = args.fixtures
    from convai_asr.models.ctc import CTCModel
    from convai_asr.pretrained.nemo import import_nemo

    stored = np.load(fixtures / "waveforms.npz")
    waves = [stored["first"], stored["second"]]
    batch = torch.zeros(2, max(len(w) for w in waves))
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = torch.from_numpy(wave.astype(np.float32) / 32768.0)
    lengths = torch.tensor([len(w) for w in waves])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, wave in enumerate(waves):
            files.append(Path(tmp) / f"{index}.wav")
            sf.write(files[-1], wave, 16000, subtype="PCM_16")
        for kind in [k for k in KINDS if (fixtures / f"{k}.nemo").is_file()]:
            print(f"[{kind}] importing and comparing", file=sys.stderr, flush=True)
            ref = np.load(fixtures / f"{kind}.npz")
            start = time.perf_counter()
            _, summary = import_nemo(fixtures / f"{kind}.nemo", Path(tmp) / f"{kind}.convai")
            import_s = time.perf_counter() - start
            model = CTCModel.restore_from(Path(tmp) / f"{kind}.convai")
            with torch.inference_mode():
                features, frames = model.preprocessor(batch, lengths)
                log_probs, encoded = model(batch, lengths)
            valid = ref["encoded_lengths"]
            lp_diff = max(
                float(
                    np.abs(log_probs[i, : valid[i]].numpy() - ref["log_probs"][i, : valid[i]]).max()
                )
                for i in range(2)
            )
            texts = [r["text"] for r in model.transcribe(files)]
            expected = [str(t).strip() for t in ref["transcripts"]]
            results[kind] = {
                "summary": summary,
                "feature_max_abs_diff": float(np.abs(features.numpy() - ref["features"]).max()),
                "log_prob_max_abs_diff": lp_diff,
                "log_prob_range": [float(ref["log_probs"].min()), float(ref["log_probs"].max())],
                "lengths_equal": frames.tolist() == ref["feature_lengths"].tolist()
                and encoded.tolist() == valid.tolist(),
                "transcripts_equal": texts == expected,
                "transcripts": texts,
                "import_seconds": round(import_s, 3),
            }
            if "nemo_thread_diff" in ref:
                results[kind]["nemo_1_vs_2_threads_max_abs_diff"] = float(ref["nemo_thread_diff"])
    header = f"{'model':<20} {'features':>9} {'log-probs':>10} {'NeMo 1v2 thr':>12}"
    print(f"{header} {'lengths':>8} {'text':>6} {'import s':>9}")
    for kind, r in results.items():
        own = r.get("nemo_1_vs_2_threads_max_abs_diff")
        print(
            f"{kind:<20} {r['feature_max_abs_diff']:>9.1e} {r['log_prob_max_abs_diff']:>10.1e} "
            f"{'-' if own is None else f'{own:.1e}':>12} "
            f"{'equal' if r['lengths_equal'] else 'DIFFER':>8} "
            f"{'equal' if r['transcripts_equal'] else 'DIFFER':>6} {r['import_seconds']:>9.2f}"
        )
    if args.json:
        payload = {
            "fixtures": str(fixtures),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tiny = [r for r in results.values() if "nemo_1_vs_2_threads_max_abs_diff" not in r]
    ok = all(r["log_prob_max_abs_diff"] < 1e-4 and r["transcripts_equal"] for r in tiny)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
