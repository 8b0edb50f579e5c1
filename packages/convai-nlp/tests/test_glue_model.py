"""nlp/glue learns question-sentence inference from real SQuAD text, restores, exports with
segment ids, and runs from a GLUE folder through `convai nlp glue`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from convai_nlp.testing import fit_quietly, task_config


def _pairs(squad_file: Path, count: int, seed: int) -> list[Any]:
    """Question-sentence pairs in QNLI's labels from real SQuAD text: half pair a question with
    the sentence of its paragraph that holds the answer (entailment), half with a sentence of
    another article (not_entailment). Easier than QNLI's same-paragraph negatives, so that a
    few hundred pairs teach it in a test's budget; the real QNLI is in the benchmark."""
    from convai_nlp.data.glue import GlueExample, sentence_spans

    data = json.loads(squad_file.read_text())
    articles = []
    for article in data["data"]:
        sentences, questions = [], []
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = sentence_spans(context)
            sentences += [context[a:b] for a, b in spans]
            for qa in paragraph["qas"]:
                start = qa["answers"][0]["answer_start"]
                holding = [context[a:b] for a, b in spans if a <= start < b]
                if holding:
                    questions.append((qa["question"], holding[0]))
        articles.append((sentences, questions))
    rng = random.Random(seed)
    rows: list[Any] = []
    while len(rows) < count:
        i = rng.randrange(len(articles))
        if not articles[i][1]:
            continue
        question, sentence = rng.choice(articles[i][1])
        if rng.random() < 0.5:
            rows.append(GlueExample(question, sentence, "entailment"))
            continue
        j = rng.randrange(len(articles))
        if j != i:
            rows.append(GlueExample(question, rng.choice(articles[j][0]), "not_entailment"))
    return rows


@pytest.fixture(scope="module")
def qnli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """500 training pairs from SQuAD's training articles, 400 dev pairs from its dev articles
    (in QNLI's format; see :func:`_pairs`)."""
    from convai_nlp.data.glue import write_glue_tsv
    from convai_nlp.data.sources import prepare

    files = prepare("squad")
    folder = tmp_path_factory.mktemp("qnli")
    return {
        "train": write_glue_tsv("qnli", _pairs(files["train"], 500, 0), folder / "train.tsv"),
        "dev": write_glue_tsv("qnli", _pairs(files["dev"], 400, 1), folder / "dev.tsv"),
    }


def _build(qnli_files: dict[str, Path]) -> Any:
    """The shipped GLUE config for QNLI pairs (64 tokens), untrained."""
    from convai_nlp.models.glue import GlueModel

    torch.manual_seed(0)
    return GlueModel(
        task_config(
            "glue",
            **{
                "task": "qnli",
                "max_seq_length": 64,
                "train_ds.file": str(qnli_files["train"]),
                "train_ds.batch_size": 16,
                "validation_ds.file": str(qnli_files["dev"]),
                "optim.lr": 1e-4,
            },
        )
    )


@pytest.fixture(scope="module")
def built(qnli_files: dict[str, Path]) -> dict[str, Any]:
    """The untrained pair model (pretrained encoder, fresh head): enough for inputs, restore
    and export."""
    model = _build(qnli_files)
    return {
        "model": model,
        "after": model.evaluate(str(qnli_files["dev"])),
        "dev": qnli_files["dev"],
    }


@pytest.fixture(scope="module")
def qnli(qnli_files: dict[str, Path]) -> dict[str, Any]:
    """The pair model fine-tuned for one epoch (70 s of one core of an AVX2 machine: slow
    suite)."""
    model = _build(qnli_files)
    before = model.evaluate(str(qnli_files["dev"]))
    trainer = fit_quietly(model, epochs=1)
    return {
        "model": model,
        "before": before,
        "after": model.evaluate(str(qnli_files["dev"])),
        "metrics": trainer.callback_metrics,
        "dev": qnli_files["dev"],
    }


@pytest.mark.slow
def test_it_learns_question_sentence_entailment(qnli: dict[str, Any]) -> None:
    before, after = qnli["before"], qnli["after"]
    assert after["majority_baseline"] < 0.56  # the pairs are balanced
    assert before["accuracy"] < 0.6, before
    # measured: 0.53 -> 0.87 in one epoch of 500 pairs
    assert after["accuracy"] > max(0.75, before["accuracy"] + 0.2), (before, after)
    # batches are padded differently in validation and evaluate: allow a near-tie or two
    assert float(qnli["metrics"]["val_accuracy"]) == pytest.approx(after["accuracy"], abs=0.006)
    assert float(qnli["metrics"]["val_score"]) == pytest.approx(after["score"], abs=0.006)
    yes, no = qnli["model"].predict(
        ["Where was the treaty signed?", "Where was the treaty signed?"],
        ["The treaty was signed in Paris in 1783.", "The harvest was poor that year."],
    )
    assert (yes["label"], no["label"]) == ("entailment", "not_entailment")


def test_pair_inputs_carry_segment_ids(built: dict[str, Any]) -> None:
    from convai_nlp.data.glue import GlueExample, encode_examples

    tokenizer = built["model"].tokenizer
    tokenizer_budget = tokenizer.max_length
    long_b = "word " * 400
    (pair, single) = encode_examples(
        tokenizer,
        [GlueExample("a short question", long_b, None), GlueExample("one text", None, None)],
    )
    assert len(pair.ids) == tokenizer_budget and pair.ids[0] == tokenizer.cls_id
    assert pair.type_ids is not None and pair.type_ids[:5] == [0] * 5 and pair.type_ids[-1] == 1
    assert single.type_ids == [0] * len(single.ids)
    with pytest.raises(ValueError, match="sentence-pair task"):
        built["model"].predict(["no second text"])


def test_restored_archive_scores_the_same_and_exports(
    built: dict[str, Any], tmp_path: Path
) -> None:
    from convai_core.models.base import ModelBase

    path = built["model"].save_to(tmp_path / "qnli.convai")
    restored = ModelBase.restore_from(path)
    assert restored.evaluate(str(built["dev"])) == built["after"]
    report = restored.export(tmp_path / "qnli.onnx", format="onnx")
    assert report.passed and report.max_abs_diff < 1e-3
    assert report.info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]


def test_regression_task_has_one_output(tmp_path: Path) -> None:
    from convai_nlp.models.glue import GlueModel

    header = (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    )
    rows = ["0\tmain\tx\t2012\t0\tnone\tnone\tA man plays a guitar.\tA man plays music.\t4.2\n"]
    (tmp_path / "train.tsv").write_text(header + "".join(rows))
    model = GlueModel(
        task_config("glue", **{"task": "stsb", "train_ds.file": str(tmp_path / "train.tsv")})
    )
    assert model.cfg.task == "sts-b" and model.regression
    (result,) = model.predict(["A man plays a guitar."], ["A man plays music."])
    assert set(result) == {"score"} and isinstance(result["score"], float)
    assert list(model.output_ports["logits"].axes)[-1].size == 1
    # the regression targets batch as floats, and the loss is the squared error
    from convai_nlp.data.batching import collate
    from convai_nlp.data.glue import glue_dataset

    items = glue_dataset(str(tmp_path / "train.tsv"), "sts-b", model.tokenizer, [])
    batch = collate(items, model.tokenizer.pad_id)
    assert batch["label"].dtype == torch.float32 and batch["label"].tolist() == pytest.approx([4.2])
    model.eval()
    with torch.no_grad():
        logits = model(*model.inputs(batch))
        loss = model._loss(logits, batch["label"])
    assert loss.item() == pytest.approx((logits.item() - 4.2) ** 2, rel=1e-5)


def test_glue_cli_trains_and_scores_a_task_folder(
    qnli_files: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    from convai_nlp.cli import nlp_main

    folder = tmp_path / "QNLI"
    folder.mkdir()
    lines = qnli_files["train"].read_text().splitlines(keepends=True)
    (folder / "train.tsv").write_text("".join(lines[:65]))
    (folder / "dev.tsv").write_text(
        "".join(qnli_files["dev"].read_text().splitlines(keepends=True)[:41])
    )
    code = nlp_main(
        [
            "glue",
            "--task",
            "QNLI",
            "--data-dir",
            str(tmp_path),
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            f"exp_manager.exp_dir={tmp_path / 'runs'}",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.rindex('{\n  "task"') :])
    assert report["task"] == "qnli" and report["dev"]["count"] == 40
    assert set(report["dev"]) >= {"accuracy", "score", "majority_baseline"}
    assert Path(report["archive"]).is_file()
    # a folder without the task's files names what it looked for
    assert nlp_main(["glue", "--task", "rte", "--data-dir", str(tmp_path)]) == 1
    assert "train.tsv" in capsys.readouterr().err
