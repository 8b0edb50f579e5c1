"""How long the Speech Data Explorer takes to open a 10,000-utterance manifest, cold and cached.

It writes a manifest of ``--utterances`` lines (20 shared 0.2 s WAV files; durations of 0.5-20 s
are written in the manifest, as the explorer reads them from there; 5-30 words per line from a
5,000-word vocabulary; 50 speakers) and a predictions file with about 15 % of the words changed,
then measures, ``--rounds`` times each:

- ``cold``: rows, statistics and error analysis computed from the files (the cache folder emptied
  first), the Dash app built and its layout served once through Flask's test client;
- ``warm``: the same with the cache written by the cold run (what every later
  ``convai explore`` of the same files does);
- ``cold, no predictions`` and ``warm, no predictions``: the manifest alone;
- ``table page``: one page of the utterance table, sorted by duration (descending) and filtered
  by a word, as the table callback computes it;
- ``import``: a new Python process importing the explorer's app module (Dash, plotly, numpy).

The target of issue 16: under 5 s to load the 10,000-utterance manifest. It prints the median and
minimum of each measure, the layout's size and the command, and with ``--json`` saves them with
the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

TARGET_S = 5.0


def make_data(folder: Path, utterances: int, seed: int) -> tuple[Path, Path]:
    """Write the WAV files, the manifest and the predictions under ``folder``."""
    rng = random.Random(seed)
    wavs = folder / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    for k in range(20):
        t = np.arange(3200) / 16000
        sf.write(wavs / f"w{k}.wav", (0.2 * np.sin(2 * np.pi * (200 + 40 * k) * t)), 16000)
    letters = "abcdefghijklmnopqrstuvwxyz'"
    vocabulary = sorted(
        {"".join(rng.choices(letters[:-1], k=rng.randint(2, 9))) for _ in range(5200)}
    )[:5000]
    manifest, predictions = folder / "manifest.jsonl", folder / "predictions.jsonl"
    with manifest.open("w", encoding="utf-8") as m, predictions.open("w", encoding="utf-8") as p:
        for i in range(utterances):
            words = rng.choices(vocabulary, k=rng.randint(5, 30))
            row = {
                "audio_filepath": f"wavs/w{i % 20}.wav",
                "duration": round(rng.uniform(0.5, 20.0), 3),
                "offset": 0.0,
                "text": " ".join(words),
                "speaker": f"spk{i % 50:02d}",
            }
            m.write(json.dumps(row) + "\n")
            hypothesis = [w if rng.random() > 0.15 else rng.choice(vocabulary) for w in words]
            record = {"audio_filepath": str((folder / row["audio_filepath"]).resolve())}
            record["text"] = " ".join(hypothesis)
            p.write(json.dumps(record) + "\n")
    return manifest, predictions


def load_and_serve(manifest: Path, predictions: Path | None) -> tuple[int, bool]:
    """Everything ``convai explore`` does before it listens; returns (layout bytes, cached)."""
    from convai_asr.explorer.app import build_app
    from convai_asr.explorer.cli import load_explorer_data

    dataset, analysis = load_explorer_data(manifest, predictions)
    app = build_app(dataset, analysis)
    response = app.server.test_client().get("/_dash-layout")
    assert response.status_code == 200
    return len(response.data), dataset.from_cache


def table_page(manifest: Path, predictions: Path) -> Callable[[], int]:
    from convai_asr.explorer.cli import load_explorer_data
    from convai_asr.explorer.layout import table_records
    from convai_asr.explorer.table import RowFilter, page_of, select_rows

    dataset, analysis = load_explorer_data(manifest, predictions)
    records = table_records(dataset, analysis)
    word = records[0]["text"].split()[0]

    def run() -> int:
        selected = select_rows(
            records,
            row_filter=RowFilter(text=word),
            sort_by=[{"column_id": "duration", "direction": "desc"}],
        )
        return len(page_of(selected, 0, 20))

    return run


def import_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); import convai_asr.explorer.app; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import dash

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "dash": dash.__version__,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="save the figures here")
    args = parser.parse_args(argv)

    import convai_asr.explorer.app  # noqa: F401 (imports are measured apart, in a new process)

    machine_info = machine()  # the load average before the runs
    work = Path(tempfile.mkdtemp(prefix="convai-explorer-bench-"))
    os.environ["CONVAI_CACHE"] = str(work / "cache")
    cache = work / "cache" / "explorer"
    try:
        manifest, predictions = make_data(work / "data", args.utterances, args.seed)
        times: dict[str, list[float]] = {
            "cold": [],
            "warm": [],
            "cold, no predictions": [],
            "warm, no predictions": [],
            "table page": [],
            "import": [],
        }
        layout_bytes = 0
        for _ in range(args.rounds):
            for label, with_predictions in (("", predictions), (", no predictions", None)):
                shutil.rmtree(cache, ignore_errors=True)
                start = time.perf_counter()
                layout_bytes, cached = load_and_serve(manifest, with_predictions)
                times[f"cold{label}"].append(time.perf_counter() - start)
                assert not cached
                start = time.perf_counter()
                _, cached = load_and_serve(manifest, with_predictions)
                times[f"warm{label}"].append(time.perf_counter() - start)
                assert cached
            page = table_page(manifest, predictions)
            start = time.perf_counter()
            page()
            times["table page"].append(time.perf_counter() - start)
            times["import"].append(import_seconds())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    command = "python benchmarks/explorer_load.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"{args.utterances:,} utterances, {args.rounds} rounds; seconds, median (minimum)")
    print(f"{'measure':<28} {'median':>8} {'min':>8}  target")
    results: dict[str, dict[str, float]] = {}
    for name, values in times.items():
        median, minimum = statistics.median(values), min(values)
        results[name] = {"median_s": median, "min_s": minimum}
        target = (
            f"< {TARGET_S:g} s {'PASS' if median < TARGET_S else 'FAIL'}"
            if "cold" in name or "warm" in name
            else ""
        )
        print(f"{name:<28} {median:>8.3f} {minimum:>8.3f}  {target}")
    first_open = results["import"]["median_s"] + results["cold"]["median_s"]
    results["first open (import + cold)"] = {"median_s": first_open}
    print(f"{'first open (import + cold)':<28} {first_open:>8.3f}")
    print(f"layout served to the browser: {layout_bytes / 1024:.0f} KiB (tables are paged)")
    print(f"command: {command.strip()}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "command": command.strip(),
                    "utterances": args.utterances,
                    "rounds": args.rounds,
                    "target_s": TARGET_S,
                    "results": results,
                    "layout_bytes": layout_bytes,
                    "machine": machine_info,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
