"""Fixtures: tiny untrained CTC models (parity does not need training) and a trained one (the
runtime's text must equal the torch path's, which needs confident, non-tied outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convai_asr.testing import SENTENCES, fit_tiny, synthesize_set, tiny_model, tiny_train_set

RECORDINGS = Path("/usr/share/pocketsphinx/test/data")


@pytest.fixture(scope="session", params=["quartznet", "conformer"])
def model(request):
    """An untrained tiny QuartzNet or Conformer CTC model."""
    return tiny_model(request.param)


@pytest.fixture(scope="session")
def real_recordings() -> list[Path]:
    """The real recordings of pocketsphinx-testdata (installed by `make`): 5 read sentences
    and 5 spoken card names."""
    files = sorted((RECORDINGS / "librivox").glob("*.wav")) + sorted(
        (RECORDINGS / "cards").glob("*.wav")
    )
    assert files, "pocketsphinx-testdata is missing: run `make test` (it installs it)"
    return files


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """A tiny QuartzNet trained briefly on 40 espeak-ng utterances (its archive and model)."""
    speech = synthesize_set(tmp_path_factory.mktemp("speech"), SENTENCES, "espeak-ng:en-us")
    result = fit_tiny(
        "quartznet", tiny_train_set(speech), tmp_path_factory.mktemp("fit"), steps=150
    )
    return result.archive, result.model
