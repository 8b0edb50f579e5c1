"""Tests of the Speech Data Explorer: statistics, cache, prediction matching, error rates, word
diff, table filters, audio, the command line, and the page in a real headless browser (Debian's
chromium driven by selenium)."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from convai_asr.errors import ManifestError
from convai_asr.explorer.app import build_app
from convai_asr.explorer.audio import read_segment, spectrogram, waveform_envelope
from convai_asr.explorer.cli import load_explorer_data, main
from convai_asr.explorer.dataset import cache_folder, load_dataset, read_word_list
from convai_asr.explorer.layout import table_records, vocabulary_records
from convai_asr.explorer.predictions import (
    analyse_errors,
    load_error_analysis,
    match_predictions,
    read_predictions,
    word_diff,
)
from convai_asr.explorer.table import RowFilter, parse_filter_query, select_rows
from convai_asr.metrics.wer import char_error_rate, word_error_rate

RATE = 16000
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# (file, duration, text, speaker, hypothesis): distinct durations so that sorting is checkable
UTTERANCES = [
    ("tone_a.wav", 0.40, "yes", "alice", "yes"),
    ("tone_b.wav", 0.90, "go left now", "bob", "go right now"),
    ("tone_c.wav", 0.60, "stop the music", "alice", "stop music"),
    ("tone_d.wav", 1.30, "turn up the volume please", "carol", "turn up the volume please"),
    ("tone_e.wav", 0.75, "no", "bob", "no no"),
    ("tone_f.wav", 1.10, "play the next song", "carol", "pay the next song"),
]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path / "cache"))


def _tone(path: Path, seconds: float, frequency: float, *, seed: int = 0) -> None:
    t = np.arange(round(seconds * RATE)) / RATE
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    sf.write(path, (0.3 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32), RATE)


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def speech_set(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest of six real short WAV files (relative paths) and its predictions file
    (absolute paths, as `convai transcribe --manifest` writes them, plus one unknown file)."""
    folder = tmp_path / "data"
    folder.mkdir()
    records, predictions = [], []
    for k, (name, seconds, text, speaker, hypothesis) in enumerate(UTTERANCES):
        _tone(folder / name, seconds, 220.0 * (k + 1), seed=k)
        records.append(
            {"audio_filepath": name, "duration": seconds, "text": text, "speaker": speaker}
        )
        predictions.append({"audio_filepath": str(folder / name), "text": hypothesis, "words": []})
    predictions.append({"audio_filepath": str(folder / "not_in_manifest.wav"), "text": "x"})
    return (
        _write_jsonl(folder / "manifest.jsonl", records),
        _write_jsonl(tmp_path / "predictions.jsonl", predictions),
    )


# ---------------------------------------------------------------------------------------------
# statistics and cache
# ---------------------------------------------------------------------------------------------


def test_statistics_equal_a_direct_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta"]
    records = []
    for i in range(300):
        text = "  ".join(rng.choice(words, size=int(rng.integers(0, 8))))
        record = {"audio_filepath": f"a{i}.wav", "duration": float(rng.uniform(0.2, 20.0))}
        record["text"] = text
        if i % 3:
            record["speaker"] = f"spk{i % 5}"
        records.append(record)
    manifest = _write_jsonl(tmp_path / "m.jsonl", records)

    dataset = load_dataset(manifest)
    stats = dataset.stats

    durations = [r["duration"] for r in records]
    texts = [" ".join(r["text"].split()) for r in records]
    assert stats.utterances == len(records)
    assert stats.total_duration_s == pytest.approx(sum(durations), rel=1e-12)
    assert stats.total_hours == pytest.approx(sum(durations) / 3600, rel=1e-12)
    assert stats.min_duration_s == min(durations)
    assert stats.max_duration_s == max(durations)
    assert stats.mean_duration_s == pytest.approx(sum(durations) / len(durations), rel=1e-12)
    assert stats.words == sum(len(t.split()) for t in texts)
    assert stats.characters == sum(len(t) for t in texts)
    assert stats.vocabulary == Counter(w for t in texts for w in t.split())
    assert stats.alphabet == Counter("".join(texts))
    counts = list(stats.vocabulary.values())
    assert counts == sorted(counts, reverse=True)  # most frequent first
    speakers = Counter(r["speaker"] for r in records if "speaker" in r)
    assert stats.speakers == speakers
    for speaker in speakers:
        seconds = sum(r["duration"] for r in records if r.get("speaker") == speaker)
        assert stats.speaker_durations_s[speaker] == pytest.approx(seconds)
    # the histogram holds every utterance, each in the bin whose edges surround it
    edges = stats.histogram_edges
    assert sum(stats.histogram_counts) == len(records)
    assert edges[0] == min(durations) and edges[-1] == max(durations)
    for k, count in enumerate(stats.histogram_counts):
        inside = [
            d
            for d in durations
            if edges[k] <= d < edges[k + 1] or (k == len(edges) - 2 and d == edges[-1])
        ]
        assert count == len(inside)
    # per-row figures
    for row, record, text in zip(dataset.rows, records, texts, strict=True):
        assert row["words"] == len(text.split())
        assert row["chars"] == len(text)
        assert row["char_rate"] == pytest.approx(len(text) / record["duration"])
        assert row["word_rate"] == pytest.approx(len(text.split()) / record["duration"])
    assert stats.rare_words() == sorted(w for w, n in stats.vocabulary.items() if n == 1)


def test_statistics_are_cached_by_path_size_and_mtime(tmp_path: Path) -> None:
    manifest = _write_jsonl(
        tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "duration": 1.0, "text": "a b"}]
    )
    first = load_dataset(manifest)
    assert not first.from_cache
    files = list(cache_folder().iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"  # no temporary file left behind
    second = load_dataset(manifest)
    assert second.from_cache
    assert second.rows == first.rows and second.stats == first.stats
    # a new version of the manifest is read afresh
    _write_jsonl(
        manifest,
        [
            {"audio_filepath": "a.wav", "duration": 1.0, "text": "a b"},
            {"audio_filepath": "b.wav", "duration": 2.0, "text": "c"},
        ],
    )
    third = load_dataset(manifest)
    assert not third.from_cache and third.stats.utterances == 2
    # --no-cache neither reads nor writes
    before = sorted(cache_folder().iterdir())
    fresh = load_dataset(manifest, use_cache=False)
    assert not fresh.from_cache and sorted(cache_folder().iterdir()) == before
    # a damaged cache file is ignored, not trusted
    for path in cache_folder().iterdir():
        path.write_text("{not json", encoding="utf-8")
    assert not load_dataset(manifest).from_cache


def test_bad_lines_and_missing_audio_are_counted_and_named(tmp_path: Path) -> None:
    _tone(tmp_path / "ok.wav", 0.5, 300)
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(
        b'{"audio_filepath": "ok.wav", "duration": 0.5, "text": "fine"}\n'
        b'{"audio_filepath": "ok.wav", "duration": 0.5\n'
        b'{"audio_filepath": "gone.wav", "duration": 0.5, "text": "lost"}\n'
        b'{"audio_filepath": "ok.wav", "duration": 0.5, "text": "caf\xe9"}\n'
        b'{"audio_filepath": "ok.wav", "text": "no duration"}\n'
    )
    dataset = load_dataset(manifest)
    assert dataset.stats.utterances == 2
    assert dataset.skipped_lines == 3
    assert "lines 2, 4, 5" in dataset.skip_message and "m.jsonl" in dataset.skip_message
    assert dataset.missing_audio == [1]
    # the page shows both
    layout = _served_layout(build_app(dataset))
    assert "Skipped 3 malformed line(s) of manifest" in layout and "lines 2, 4, 5" in layout
    assert "1 utterance(s) name an audio file that does not exist" in layout
    assert "line 3: " in layout


def _served_layout(app: Any) -> str:
    """The layout as the browser receives it (JSON)."""
    response = app.server.test_client().get("/_dash-layout")
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def _find(node: Any, component_id: str) -> dict[str, Any]:
    """The props of the component with ``component_id`` in a served layout."""
    if isinstance(node, dict):
        props = node.get("props", {})
        if isinstance(props, dict) and props.get("id") == component_id:
            return props
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        children = []
    for child in children:
        try:
            return _find(child, component_id)
        except KeyError:
            continue
    raise KeyError(component_id)


def test_a_vocabulary_marks_out_of_vocabulary_words(tmp_path: Path) -> None:
    dataset = load_dataset(
        _write_jsonl(
            tmp_path / "m.jsonl",
            [
                {"audio_filepath": "a.wav", "duration": 1.0, "text": "the cat sat"},
                {"audio_filepath": "b.wav", "duration": 1.0, "text": "the dog sat on the cat"},
            ],
        )
    )
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\t120\ncat 4\n\nsat\n", encoding="utf-8")  # word-count lines work
    known = read_word_list(vocab)
    assert known == {"the", "cat", "sat"}
    records = table_records(dataset, None, known)
    assert [r["oov"] for r in records] == [0, 2]
    words = {r["word"]: r["oov"] for r in vocabulary_records(dataset, None, known)}
    assert words == {"the": "", "cat": "", "sat": "", "dog": "yes", "on": "yes"}
    layout = json.loads(_served_layout(build_app(dataset, known_words=known)))
    assert _find(layout, "stat-oov-words")["data-value"] == "2"
    assert _find(layout, "stat-oov-occurrences")["data-value"] == "2"
    vocab.write_bytes(b"the\n\xff\n")
    with pytest.raises(ManifestError, match=r"vocab\.txt:2: not UTF-8"):
        read_word_list(vocab)


# ---------------------------------------------------------------------------------------------
# predictions and error analysis
# ---------------------------------------------------------------------------------------------


def test_predictions_match_by_path_and_offset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = load_dataset(
        _write_jsonl(
            data / "m.jsonl",
            [
                {"audio_filepath": "long.wav", "duration": 1.0, "offset": 0.0, "text": "one"},
                {"audio_filepath": "long.wav", "duration": 1.0, "offset": 1.0, "text": "two"},
                {"audio_filepath": "long.wav", "duration": 1.0, "offset": 2.0, "text": "three"},
                {"audio_filepath": "b.wav", "duration": 1.0, "text": "four"},
                {"audio_filepath": "c.wav", "duration": 1.0, "text": "five"},
            ],
        )
    ).rows
    predictions = tmp_path / "p.jsonl"
    predictions.write_bytes(
        b'{"audio_filepath": "data/long.wav", "offset": 2.0, "text": "tree"}\n'
        b'{"audio_filepath": "data/long.wav", "offset": 0.0004, "text": "won"}\n'
        + json.dumps({"audio_filepath": str(data / "b.wav"), "text": "for"}).encode()
        + b"\n"
        b'{"audio_filepath": "data/b.wav", "text": "again"}\n'
        b'{"audio_filepath": "data/zzz.wav", "text": "nobody"}\n'
        b'{"audio_filepath": "data/c.wav", "pred_text": "fife", "text": "five"}\n'
        b"not json\n"
        b'{"audio_filepath": "data/c.wav", "text": "caf\xe9"}\n'
        b'{"audio_filepath": "data/c.wav"}\n'
    )
    lines, malformed, problems = read_predictions(predictions)
    assert malformed == 3
    assert [p.split(":")[0] for p in problems] == ["line 7", "line 8", "line 9"]
    assert "UTF-8" in problems[1] and "no hypothesis" in problems[2]
    hypotheses, unmatched = match_predictions(rows, lines, base_dir=tmp_path)
    assert hypotheses == {2: "tree", 0: "won", 3: "for", 4: "fife"}
    # the second b.wav line finds its only utterance taken; zzz.wav is not in the manifest
    assert [(p.line, p.audio_filepath) for p in unmatched] == [
        (4, "data/b.wav"),
        (5, "data/zzz.wav"),
    ]


def test_error_rates_are_convai_metrics(speech_set: tuple[Path, Path]) -> None:
    manifest, predictions = speech_set
    _, analysis = load_explorer_data(manifest, predictions)
    assert analysis is not None
    refs = [u[2] for u in UTTERANCES]
    hyps = [u[4] for u in UTTERANCES]
    assert analysis.wer_total == word_error_rate(refs, hyps)
    assert analysis.cer_total == char_error_rate(refs, hyps)
    for i, (ref, hyp) in enumerate(zip(refs, hyps, strict=True)):
        assert analysis.wer[i] == word_error_rate([ref], [hyp])
        assert analysis.cer[i] == char_error_rate([ref], [hyp])
    assert analysis.matched == 6 and analysis.unmatched_lines == 1
    assert analysis.unmatched_examples == [f"line 7: {manifest.parent / 'not_in_manifest.wav'}"]
    # counted by hand: 17 reference words; left -> right, "the" deleted, "play" -> "pay", one
    # "no" inserted
    assert analysis.word_counts == [2, 1, 1, 17]
    assert analysis.word_match_rate == pytest.approx(14 / 17)
    # each distinct reference word's recognized share: "the" 2 of 3, "left" and "play" 0 of 1
    distinct = {w for ref in refs for w in ref.split()}
    expected = {w: 1.0 for w in distinct} | {"the": 2 / 3, "left": 0.0, "play": 0.0}
    assert analysis.word_accuracy == pytest.approx(expected)
    assert analysis.mean_word_accuracy == pytest.approx(sum(expected.values()) / len(expected))
    # cached: the same figures come back
    _, again = load_explorer_data(manifest, predictions)
    assert again is not None and again.from_cache and again.wer == analysis.wer


def test_a_manifest_with_pred_text_is_its_own_predictions(tmp_path: Path) -> None:
    manifest = _write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "a.wav", "duration": 1.0, "text": "a b", "pred_text": "a c"},
            {"audio_filepath": "b.wav", "duration": 1.0, "text": "d e", "pred_text": "d e"},
        ],
    )
    _, analysis = load_explorer_data(manifest)
    assert analysis is not None and analysis.wer_total == pytest.approx(1 / 4)
    assert analysis.unmatched_lines == 0 and analysis.matched == 2


def test_word_diff_marks_substitutions_deletions_and_insertions() -> None:
    spans = word_diff("the cat sat on the mat", "the cat sit on mat")
    assert [(s.operation, s.reference, s.hypothesis) for s in spans] == [
        ("equal", "the cat", "the cat"),
        ("substitute", "sat", "sit"),
        ("equal", "on", "on"),
        ("delete", "the", ""),
        ("equal", "mat", "mat"),
    ]
    spans = word_diff("turn on the light", "turn the light on now")
    assert [(s.operation, s.reference, s.hypothesis) for s in spans] == [
        ("equal", "turn", "turn"),
        ("delete", "on", ""),
        ("equal", "the light", "the light"),
        ("insert", "", "on now"),
    ]
    assert [s.operation for s in word_diff("", "hello there")] == ["insert"]
    assert [s.operation for s in word_diff("hello", "")] == ["delete"]


def test_rows_without_prediction_are_left_out_of_the_rates(tmp_path: Path) -> None:
    dataset = load_dataset(
        _write_jsonl(
            tmp_path / "m.jsonl",
            [
                {"audio_filepath": "a.wav", "duration": 1.0, "text": "a b"},
                {"audio_filepath": "b.wav", "duration": 1.0, "text": "c d"},
            ],
        )
    )
    analysis = analyse_errors(dataset, {1: "c x"})
    assert analysis.wer == [None, 0.5] and analysis.wer_total == 0.5
    assert analysis.rows_without_prediction == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_error_analysis(dataset, tmp_path / "nothing.jsonl")


# ---------------------------------------------------------------------------------------------
# table filters, audio, command line
# ---------------------------------------------------------------------------------------------


def test_filters_and_sorting_select_the_right_rows() -> None:
    records = [
        {"text": "Yes please", "duration": 2.0, "wer": 10.0, "speaker": "a"},
        {"text": "no", "duration": 1.0, "wer": None, "speaker": "b"},
        {"text": "yes", "duration": 3.0, "wer": 60.0, "speaker": "a"},
        {"text": "maybe", "duration": 0.5, "wer": 30.0, "speaker": None},
    ]
    assert select_rows(records, row_filter=RowFilter(text="YES")) == [0, 2]
    assert select_rows(records, row_filter=RowFilter(min_duration=1.0, max_duration=2.0)) == [0, 1]
    assert select_rows(records, row_filter=RowFilter(min_wer=20)) == [2, 3]
    assert select_rows(records, row_filter=RowFilter(speakers=("a",))) == [0, 2]
    by_wer = select_rows(records, sort_by=[{"column_id": "wer", "direction": "desc"}])
    assert by_wer == [2, 3, 0, 1]  # missing values last
    conditions = parse_filter_query('{duration} s> 0.9 && {text} icontains "ye"')
    assert select_rows(records, conditions=conditions) == [0, 2]
    assert select_rows(records, conditions=parse_filter_query("{speaker} = a")) == [0, 2]
    assert select_rows(records, conditions=parse_filter_query("{wer} <= 30")) == [0, 3]
    with pytest.raises(ValueError, match="cannot read the filter"):
        parse_filter_query("{duration} ~~ 3")


def test_audio_segments_plots_and_the_audio_route(tmp_path: Path) -> None:
    _tone(tmp_path / "long.wav", 2.0, 440.0)
    manifest = _write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "long.wav", "duration": 0.75, "offset": 0.5, "text": "a"},
            {"audio_filepath": "gone.wav", "duration": 1.0, "text": "b"},
        ],
    )
    samples, rate = read_segment(str(tmp_path / "long.wav"), offset=0.5, duration=0.75)
    assert rate == RATE and len(samples) == 0.75 * RATE
    full, _ = read_segment(str(tmp_path / "long.wav"))
    np.testing.assert_array_equal(samples, full[8000:20000])
    _, values = waveform_envelope(full, RATE, max_points=1000)
    assert len(values) <= 1000 and values.max() == full.max() and values.min() == full.min()
    frame_times, frequencies, decibels = spectrogram(full, RATE, max_frames=100)
    assert decibels.shape == (len(frequencies), len(frame_times)) and len(frame_times) <= 101
    assert abs(frequencies[decibels.mean(axis=1).argmax()] - 440.0) < 40.0

    client = build_app(load_dataset(manifest)).server.test_client()
    response = client.get("/audio/0.wav")
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert response.data[:4] == b"RIFF"
    served, served_rate = sf.read(io.BytesIO(response.data))
    assert served_rate == RATE and len(served) == 0.75 * RATE
    missing = client.get("/audio/1.wav")
    assert missing.status_code == 404 and b"gone.wav" in missing.data
    assert client.get("/audio/2.wav").status_code == 404
    # the route takes an index, never a path
    for probe in ("/audio/-1.wav", "/audio/..%2Fm.jsonl", "/audio/%2Fetc%2Fpasswd.wav"):
        assert client.get(probe).data[:4] != b"RIFF"


def test_help_imports_neither_dash_nor_torch() -> None:
    code = (
        "import sys\n"
        "from convai_core.cli import main\n"
        "try:\n"
        "    main(['explore', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('dash', 'torch', 'plotly') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "usage: convai explore" in result.stdout and "--predictions" in result.stdout
    assert result.stdout.strip().endswith("[]"), result.stdout


def test_without_dash_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dash" else real(name, *a)
    )
    assert main([str(tmp_path / "m.jsonl")]) == 2
    assert "pip install 'convai-asr[explorer]'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the page in a real browser
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian chromium through /usr/bin/chromedriver (selenium never downloads one)."""
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip(
            "Debian's chromium is not installed (/usr/bin/chromium); run "
            "tools/install_system_deps.sh (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="convai-chromium-") as profile:
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,1000",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


def _serve(app: Any) -> tuple[str, Any]:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def _column(driver: Any, column: str) -> list[str]:
    script = (
        "return Array.from(document.querySelectorAll("
        f"'#utterances td[data-dash-column=\"{column}\"]')).map(td => td.innerText.trim());"
    )
    return list(driver.execute_script(script))


def test_the_page_in_a_headless_browser(speech_set: tuple[Path, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    manifest, predictions = speech_set
    dataset, analysis = load_explorer_data(manifest, predictions)
    base, server = _serve(build_app(dataset, analysis))
    wait = WebDriverWait(browser, 20)
    try:
        browser.get(base + "/")
        wait.until(lambda d: d.find_elements(By.ID, "stat-utterances"))

        # the statistics equal the test's own computation
        durations = [u[1] for u in UTTERANCES]
        words = [w for u in UTTERANCES for w in u[2].split()]
        expected = {
            "utterances": len(UTTERANCES),
            "total-seconds": math.fsum(durations),
            "min-duration": min(durations),
            "max-duration": max(durations),
            "mean-duration": math.fsum(durations) / len(durations),
            "words": len(words),
            "vocabulary": len(set(words)),
            "alphabet": len(set("".join(u[2] for u in UTTERANCES))),
            "speakers": len({u[3] for u in UTTERANCES}),
        }
        for name, value in expected.items():
            shown = browser.find_element(By.ID, f"stat-{name}")
            assert float(shown.get_attribute("data-value")) == pytest.approx(value), name
        assert browser.find_element(By.ID, "stat-utterances").text == "6"
        assert browser.find_element(By.ID, "stat-total-seconds").text == f"{sum(durations):.2f}"
        assert (
            "1 prediction line(s) match no utterance" in browser.find_element(By.ID, "notices").text
        )

        # the error-analysis view shows convai's WER
        browser.find_element(By.ID, "tab-errors").click()
        wer = word_error_rate([u[2] for u in UTTERANCES], [u[4] for u in UTTERANCES])
        shown_wer = wait.until(lambda d: d.find_element(By.ID, "metric-wer"))
        assert float(shown_wer.get_attribute("data-value")) == wer
        assert shown_wer.text == f"{100 * wer:.2f} %"
        assert browser.find_element(By.ID, "metric-unmatched").text == "1"

        # the table: all rows in manifest order, then sorted, then filtered
        browser.find_element(By.ID, "tab-utterances").click()
        everything = [str(i) for i in range(len(UTTERANCES))]
        wait.until(lambda d: _column(d, "index") == everything)
        by_duration = [str(i) for i in np.argsort(durations)]
        sort_button = browser.find_element(
            By.CSS_SELECTOR, 'th[data-dash-column="duration"] .column-header--sort'
        )
        sort_button.click()
        wait.until(lambda d: _column(d, "index") == by_duration)
        browser.find_element(
            By.CSS_SELECTOR, 'th[data-dash-column="duration"] .column-header--sort'
        ).click()
        wait.until(lambda d: _column(d, "index") == by_duration[::-1])

        text_filter = browser.find_element(By.ID, "filter-text")
        text_filter.send_keys("the", Keys.ENTER)
        with_the = [str(i) for i, u in enumerate(UTTERANCES) if "the" in u[2]]
        wait.until(lambda d: sorted(_column(d, "index")) == with_the)
        assert browser.find_element(By.ID, "utterance-count").text == "3 of 6 utterances"
        browser.find_element(By.ID, "filter-duration-min").send_keys("1", Keys.ENTER)
        wait.until(lambda d: sorted(_column(d, "index")) == ["3", "5"])
        browser.find_element(By.ID, "filter-wer-min").send_keys("10", Keys.ENTER)
        wait.until(lambda d: _column(d, "index") == ["5"])
        for control in ("filter-text", "filter-duration-min", "filter-wer-min"):
            field = browser.find_element(By.ID, control)
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(Keys.BACKSPACE, Keys.ENTER)
        wait.until(lambda d: len(_column(d, "index")) == len(UTTERANCES))
        # the DataTable's own filter row works too
        column_filter = browser.find_element(
            By.CSS_SELECTOR, 'th.dash-filter[data-dash-column="duration"] input'
        )
        column_filter.send_keys("< 0.7", Keys.ENTER)
        wait.until(lambda d: sorted(_column(d, "index")) == ["0", "2"])

        # clicking a row shows its waveform, spectrogram, audio and word diff
        target = browser.find_element(
            By.XPATH, '//td[@data-dash-column="text"][.//*[contains(text(), "stop the music")]]'
        )
        target.click()
        wait.until(lambda d: "stop the music" in d.find_element(By.ID, "detail-reference").text)
        # plotly.js keeps the decoded arrays of each trace in _fullData (numpy arrays travel as
        # base64 typed arrays, which gd.data holds undecoded)
        trace = (
            "const g = document.querySelector('#{} .js-plotly-plot');"
            "const t = g && g._fullData && g._fullData[0];"
            "return t && t.{} ? [t.type, t.{}.length] : null;"
        )
        waveform = wait.until(lambda d: d.execute_script(trace.format("waveform", "y", "y")))
        assert waveform[0] == "scatter" and waveform[1] > 100
        heatmap = wait.until(lambda d: d.execute_script(trace.format("spectrogram", "z", "z")))
        assert heatmap[0] == "heatmap" and heatmap[1] > 10
        source = browser.find_element(By.ID, "player").get_attribute("src")
        assert source.endswith("/audio/2.wav")
        with urllib.request.urlopen(source, timeout=10) as response:
            audio = response.read()
        assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
        assert len(sf.read(io.BytesIO(audio))[0]) == round(0.6 * RATE)
        deleted = browser.find_elements(By.CSS_SELECTOR, "#word-diff .diff-delete")
        assert [span.text for span in deleted] == ["the"]
    finally:
        server.shutdown()


def test_the_command_serves_the_page(speech_set: tuple[Path, Path]) -> None:
    """`convai explore` itself: starts, prints where, answers with the page, stops on SIGTERM."""
    manifest, predictions = speech_set
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convai_core.cli",
            "explore",
            str(manifest),
            "--predictions",
            str(predictions),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        page = b""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read()
            except OSError:
                time.sleep(0.2)
        assert b"Speech Data Explorer" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/audio/0.wav", timeout=5) as r:
            assert r.read(4) == b"RIFF"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "6 utterances" in err and "WER" in err and "1 line(s) matched no utterance" in err
