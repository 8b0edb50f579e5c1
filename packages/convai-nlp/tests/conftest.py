"""Shared fixtures: small subsets of the real corpora (fetched once into the convai cache)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlp_corpora")


@pytest.fixture(scope="session")
def conll(corpus_dir: Path) -> dict[str, Path]:
    """600 training and 300 dev sentences of CoNLL-2003."""
    from convai_nlp.data.sources import prepare
    from convai_nlp.testing import subset

    files = prepare("conll2003")
    return {
        "train_text": subset(files["train_text"], corpus_dir / "ner_train_text.txt", 600),
        "train_labels": subset(files["train_labels"], corpus_dir / "ner_train_labels.txt", 600),
        "dev_text": subset(files["dev_text"], corpus_dir / "ner_dev_text.txt", 300),
        "dev_labels": subset(files["dev_labels"], corpus_dir / "ner_dev_labels.txt", 300),
    }
