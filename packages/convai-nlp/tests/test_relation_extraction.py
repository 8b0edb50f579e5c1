"""nlp/relation_extraction learns ChemProt-style relations and carries them to unseen verbs.

The files are in BLUE's ChemProt format (index, sentence with @CHEMICAL$ and @GENE$, label),
written by the test from templates: the relation is said by a verb, and the dev set uses
verbs the training set never shows, so only what the pretrained encoder knows of their meaning
can carry the model over.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from convai_nlp.testing import fit_quietly, task_config

TRAIN_VERBS = {
    "CPR:4": ["inhibits", "suppresses", "blocks", "decreases the activity of"],
    "CPR:3": ["activates", "stimulates", "upregulates", "increases the activity of"],
    "false": ["was measured together with", "was studied alongside", "and", "was listed with"],
}
DEV_VERBS = {
    "CPR:4": ["attenuates", "reduces the activity of", "downregulates"],
    "CPR:3": ["enhances", "induces", "potentiates"],
    "false": ["was reported next to", "was detected with", "was sampled with"],
}
OPENINGS = ["", "In rat liver cells, ", "Our results show that ", "In vitro, ", "We found that "]
CLOSINGS = [".", " in a dose-dependent manner.", " in human cells.", " after 24 hours.", "."]


def _write(path: Path, verbs: dict[str, list[str]], count: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["index\tsentence\tlabel"]
    for i in range(count):
        label = rng.choice(sorted(verbs))
        sentence = f"{rng.choice(OPENINGS)}@CHEMICAL$ {rng.choice(verbs[label])} @GENE${rng.choice(CLOSINGS)}"
        lines.append(f"{10000 + i}.T{i}.T{i + 1}\t{sentence}\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def relations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from convai_nlp.models.relation_extraction import RelationExtractionModel

    folder = tmp_path_factory.mktemp("chemprot")
    train = _write(folder / "train.tsv", TRAIN_VERBS, 300, 0)
    dev = _write(folder / "dev.tsv", DEV_VERBS, 150, 1)
    torch.manual_seed(0)
    model = RelationExtractionModel(
        task_config(
            "relation_extraction",
            **{
                "train_ds.file": str(train),
                "train_ds.batch_size": 16,
                "validation_ds.file": str(dev),
                "optim.lr": 2e-4,
            },
        )
    )
    before = model.evaluate(str(dev))
    trainer = fit_quietly(model, epochs=3)
    return {
        "model": model,
        "before": before,
        "after": model.evaluate(str(dev)),
        "metrics": trainer.callback_metrics,
        "dev": dev,
    }


def test_it_learns_relations_and_generalizes_to_unseen_verbs(relations: dict[str, Any]) -> None:
    model, before, after = relations["model"], relations["before"], relations["after"]
    assert model.labels == ["CPR:3", "CPR:4", "false"] and model.negative_label == "false"
    assert before["f1"] < 0.5, before
    # measured: 0.43 -> 0.70 on the unseen verbs (1e-4 or 2e-4, 3 or 5 epochs: a plateau)
    assert after["f1"] > max(0.6, before["f1"] + 0.2), (before, after)
    assert float(relations["metrics"]["val_f1"]) == pytest.approx(after["f1"], abs=0.02)


def test_restored_archive_and_cli(relations: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from convai_core.models.base import ModelBase
    from convai_nlp.cli import nlp_main

    path = relations["model"].save_to(tmp_path / "re.convai")
    assert ModelBase.restore_from(path).evaluate(str(relations["dev"])) == relations["after"]
    text = "We found that @CHEMICAL$ strongly activates @GENE$ in human cells."
    assert nlp_main(["relation_extraction", "--model", str(path), text]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "CPR:3"


def test_an_unknown_negative_label_is_refused(relations: dict[str, Any]) -> None:
    from convai_core.errors import ConfigError
    from convai_nlp.models.relation_extraction import RelationExtractionModel

    cfg = task_config(
        "relation_extraction",
        **{"train_ds.file": str(relations["dev"]), "negative_label": "Other"},
    )
    with pytest.raises(ConfigError, match="negative_label='Other' is not one of the labels"):
        RelationExtractionModel(cfg)
