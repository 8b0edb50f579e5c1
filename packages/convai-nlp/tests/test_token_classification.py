"""nlp/token_classification learns NER from 600 real CoNLL-2003 sentences, restores, exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from convai_nlp.testing import fit_quietly as fit
from convai_nlp.testing import task_config as config


@pytest.fixture(scope="module")
def ner(conll: dict[str, Path]) -> dict[str, Any]:
    from convai_nlp.models.token_classification import TokenClassificationModel

    torch.manual_seed(0)
    cfg = config(
        "token_classification",
        **{
            "train_ds.text_file": str(conll["train_text"]),
            "train_ds.labels_file": str(conll["train_labels"]),
            "train_ds.batch_size": 16,
            "optim.lr": 2e-4,
            "validation_ds.text_file": str(conll["dev_text"]),
            "validation_ds.labels_file": str(conll["dev_labels"]),
        },
    )
    model = TokenClassificationModel(cfg)
    before = model.evaluate(str(conll["dev_text"]), str(conll["dev_labels"]))
    trainer = fit(model, epochs=2)
    after = model.evaluate(str(conll["dev_text"]), str(conll["dev_labels"]))
    return {"model": model, "before": before, "after": after, "metrics": trainer.callback_metrics}


def test_it_learns_named_entities_from_real_sentences(ner: dict[str, Any]) -> None:
    # measured: F1 0.00 before, 0.49 after 2 epochs (about 15 s); a fresh head tags nothing
    assert ner["before"]["f1"] < 0.1
    assert ner["after"]["f1"] > 0.40
    assert ner["after"]["per_type"]["PER"]["f1"] > 0.5
    # the validation loop scores the same words the same way as evaluate()
    assert float(ner["metrics"]["val_f1"]) == pytest.approx(ner["after"]["f1"], abs=1e-6)
    tagged = ner["model"].tag(["Peter Blackburn met officials in Brussels ."])[0]
    assert [w for w, _ in tagged][:2] == ["Peter", "Blackburn"]


def test_save_and_restore_give_identical_predictions(ner: dict[str, Any], tmp_path: Path) -> None:
    from convai_core.models.base import ModelBase

    model = ner["model"]
    path = model.save_to(tmp_path / "ner.convai")
    restored = ModelBase.restore_from(path)
    assert type(restored) is type(model) and restored.labels == model.labels
    # the archive carries the tokenizer and the encoder's architecture: no folder needed
    assert restored.cfg.backbone.init == "config"
    assert "archive" not in str(model.cfg.tokenizer.tokenizer_file)
    texts = ["EU rejects German call to boycott British lamb .", "Japan began the defence ."]
    assert restored.tag(texts) == model.tag(texts)
    (encoded,) = model.tokenizer.encode_texts(texts[:1])
    ids, cases = torch.tensor([encoded.ids]), torch.tensor([encoded.case_ids])
    mask = torch.ones_like(ids)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids, mask, cases), restored(ids, mask, cases))
    # the case embedding learned something: the same words in other cases are read otherwise
    assert model.backbone.case_embedding.weight.abs().sum() > 0
    with torch.no_grad():
        assert not torch.equal(model(ids, mask, cases), model(ids, mask, torch.full_like(cases, 2)))


def test_long_inputs_are_tagged_in_overlapping_windows(ner: dict[str, Any]) -> None:
    model = ner["model"]
    words = (
        "Peter Blackburn said on Friday that the European Union and Germany would meet in "
        "Brussels next week to discuss the ban ."
    ).split() * 3
    full = model.tag([words])[0]
    saved = model.tokenizer.max_length
    model.tokenizer.max_length = 24  # forces windows of about 20 sub-tokens
    try:
        windowed = model.tag([words])[0]
    finally:
        model.tokenizer.max_length = saved
    assert [w for w, _ in windowed] == words  # every word got a label
    agree = sum(a == b for a, b in zip(full, windowed, strict=True)) / len(words)
    assert agree >= 0.85, agree


def test_onnx_export_matches_the_model(ner: dict[str, Any], tmp_path: Path) -> None:
    report = ner["model"].export(tmp_path / "ner.onnx", format="onnx")
    assert (tmp_path / "ner.onnx").is_file()
    # run on 2 batch sizes x 2 lengths against the eager model before the file was written
    assert report.passed and len(report.checks) == 4
    assert report.max_abs_diff < 1e-3
    # the NER config gives the uncased encoder the letter case back: a third input
    assert report.info["inputs"] == ["input_ids", "attention_mask", "case_ids"]


def test_fine_tuning_with_a_new_label_set_keeps_the_encoder(
    ner: dict[str, Any], conll: dict[str, Path], tmp_path: Path
) -> None:
    from convai_nlp.models.token_classification import TokenClassificationModel

    source = ner["model"]
    path = source.save_to(tmp_path / "ner.convai")
    cfg = config(
        "token_classification",
        **{
            "labels": ["O", "B-PER", "I-PER", "B-PRODUCT", "I-PRODUCT"],
            "train_ds.text_file": str(conll["train_text"]),
            "train_ds.labels_file": str(conll["train_labels"]),
        },
    )
    target = TokenClassificationModel(cfg)
    result = target.warm_start_from(path)
    assert any(k.startswith("backbone.") for k in result["loaded"])
    assert {k for k in result["skipped"]} == {"head.mlp.1.weight", "head.mlp.1.bias"}
    assert target.head.mlp[1].out_features == 5
    for name, tensor in source.backbone.state_dict().items():
        assert torch.equal(tensor, target.backbone.state_dict()[name]), name
