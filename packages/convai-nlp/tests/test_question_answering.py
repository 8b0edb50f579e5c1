"""nlp/question_answering: SQuAD files, context windows, EM/F1, and a model that learns to answer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from convai_nlp.data.squad import (
    QAFeature,
    SquadQuestion,
    answer_f1,
    best_answers,
    normalize_answer,
    qa_features,
    read_squad,
    squad_scores,
    window_starts,
)
from convai_nlp.errors import DataError
from convai_nlp.testing import fit_quietly, task_config


def _squad(path: Path, paragraphs: list[dict[str, Any]]) -> Path:
    path.write_text(
        json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    return path


def _sentence_around(context: str, start: int, end: int) -> tuple[int, int]:
    """Character range of the sentence(s) holding ``start:end``."""
    ends = [m.end() for m in re.finditer(r"[.!?]\s+(?=[A-Z])", context)]
    bounds = [0, *ends, len(context)]
    first = max(i for i, b in enumerate(bounds) if b <= start)
    last = min(i for i, b in enumerate(bounds) if b >= end)
    return bounds[first], bounds[last]


def _short_contexts(source: Path, target: Path, count: int, skip: int = 0) -> Path:
    """``count`` real SQuAD questions (every third, after ``skip``), each with its context cut to
    the sentence that holds the answer (short inputs for a fast test)."""
    data = json.loads(source.read_text())
    paragraphs = []
    taken = seen = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                seen += 1
                if seen <= skip or seen % 3 or taken >= count:
                    continue
                context = paragraph["context"]
                answer = qa["answers"][0]
                a = answer["answer_start"]
                lo, hi = _sentence_around(context, a, a + len(answer["text"]))
                answers = [
                    {"text": x["text"], "answer_start": x["answer_start"] - lo}
                    for x in qa["answers"]
                    if lo <= x["answer_start"] and x["answer_start"] + len(x["text"]) <= hi
                ]
                paragraphs.append({"context": context[lo:hi], "qas": [{**qa, "answers": answers}]})
                taken += 1
    return _squad(target, paragraphs)


@pytest.fixture(scope="module")
def squad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from convai_nlp.data.sources import prepare

    files = prepare("squad")
    folder = tmp_path_factory.mktemp("squad")
    return {
        **files,
        "small_train": _short_contexts(files["train"], folder / "train.json", 640),
        "small_dev": _short_contexts(files["dev"], folder / "dev.json", 150),
    }


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from convai_nlp.backbones import backbone_folder
    from convai_nlp.tokenizers import HFTokenizer

    return HFTokenizer(str(backbone_folder("minilm-l6-h384") / "tokenizer.json"), max_length=64)


# ------------------------------------------------------------------------- reading
def test_reader_names_the_place_of_a_malformed_entry(tmp_path: Path) -> None:
    ctx = "Paris is the capital of France."
    good = {
        "id": "a",
        "question": "What is the capital?",
        "answers": [{"text": "Paris", "answer_start": 0}],
    }
    no_answer = {"id": "b", "question": "Who?", "answers": []}
    path = _squad(tmp_path / "s.json", [{"context": ctx, "qas": [good, no_answer]}])
    with pytest.raises(
        DataError, match=r"s\.json: data\[0\]\.paragraphs\[0\]\.qas\[1\]: no answers"
    ):
        read_squad(path)
    assert [q.qid for q in read_squad(path, skip_bad=True)] == ["a"]
    # SQuAD v2.0 marks unanswerable questions
    v2 = _squad(
        tmp_path / "v2.json", [{"context": ctx, "qas": [{**no_answer, "is_impossible": True}]}]
    )
    assert read_squad(v2)[0].impossible
    # an answer that is not in its context
    wrong = {**good, "answers": [{"text": "Lyon", "answer_start": 0}]}
    with pytest.raises(DataError, match=r"answers\[0\]: the answer 'Lyon' does not occur"):
        read_squad(_squad(tmp_path / "w.json", [{"context": ctx, "qas": [wrong]}]))
    # an answer start off by a character is moved onto the nearest occurrence
    shifted = {**good, "answers": [{"text": "France", "answer_start": 23}]}
    (question,) = read_squad(_squad(tmp_path / "o.json", [{"context": ctx, "qas": [shifted]}]))
    assert question.answers == (("France", 24),)
    (tmp_path / "bad.json").write_text('{"data": [\n  {"paragraphs": ]}')
    with pytest.raises(DataError, match=r"bad\.json:2:\d+: not valid JSON"):
        read_squad(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError, match="no 'data' list"):
        read_squad(tmp_path / "list.json")


# ------------------------------------------------------------------------- windows
def test_window_starts_cover_every_token_with_the_stride() -> None:
    assert window_starts(10, 20, 5) == [0]
    assert window_starts(100, 40, 25) == [0, 25, 50, 75]
    # a stride wider than allows a 10-token answer to fit whole in a window is cut to 31
    starts = window_starts(100, 40, 40, span=10)
    assert starts == [0, 31, 62]
    assert all(any(s <= a and a + 10 <= s + 40 for s in starts) for a in range(91))
    for count, width, stride in [(100, 40, 25), (513, 128, 128), (7, 3, 1)]:
        starts = window_starts(count, width, stride)
        covered = {i for s in starts for i in range(s, min(s + width, count))}
        assert covered == set(range(count)) and starts[-1] + width >= count


def test_long_contexts_are_windowed_and_answers_map_back(
    squad_files: dict[str, Path], tokenizer: Any
) -> None:
    questions = read_squad(squad_files["dev_1000"])[:60]
    features = qa_features(tokenizer, questions, doc_stride=16, max_query_length=20)
    assert len(features) > 4 * len(questions)  # 64-token inputs: most contexts take many windows
    held = {}
    for f in features:
        assert len(f.input_ids) <= 64 and f.input_ids[0] == tokenizer.cls_id
        assert f.token_type_ids[f.first] == 1 and f.token_type_ids[f.first - 1] == 0
        if f.start:
            q = questions[f.question]
            text = q.context[f.spans[f.start - f.first][0] : f.spans[f.end - f.first][1]]
            held[f.question] = normalize_answer(text) == normalize_answer(q.answers[0][0])
    # every question's answer lies whole in at least one window, and maps back to its text
    assert len(held) >= 58 and sum(held.values()) >= 56, held


def test_best_answers_join_windows_and_apply_the_length_limit() -> None:
    context = "alpha beta gamma delta"
    spans = [(0, 5), (6, 10), (11, 16), (17, 22)]
    first = QAFeature(0, [0] * 7, [0] * 7, [0] * 7, 2, spans[:2])
    second = QAFeature(0, [0] * 7, [0] * 7, [0] * 7, 2, spans[2:])
    low = [-5.0] * 7
    start1, end1 = [1.0, 0, 3.0, 0, 0, 0, 0], [1.0, 0, 0, 2.0, 0, 0, 0]
    start2, end2 = [0.5, 0, 4.0, 0, 0, 0, 0], [0.5, 0, 0, 4.5, 0, 0, 0]
    answers, null = best_answers(
        context, [first, second], [(start1, end1), (start2, end2)], n_best=3, max_answer_length=2
    )
    assert answers[0] == {"text": "gamma delta", "start": 11, "end": 22, "score": 8.5}
    assert answers[1]["text"] == "alpha beta" and null == 1.0
    answers, _ = best_answers(context, [first], [(start1, low)], n_best=3, max_answer_length=1)
    assert all(" " not in a["text"] for a in answers)


# ------------------------------------------------------------------------- scores
def test_scores_follow_the_squad_definition() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert answer_f1("the Denver Broncos", "Denver Broncos") == 1.0
    assert answer_f1("Denver Broncos won", "Broncos") == pytest.approx(0.5)  # P 1/3, R 1
    qs = [
        SquadQuestion("1", "q", "c", (("Denver Broncos", 0), ("Broncos", 7))),
        SquadQuestion("2", "q", "c", (("1783", 0),)),
        SquadQuestion("3", "q", "c", ()),
    ]
    report = squad_scores(qs, {"1": "the broncos", "2": "in 1783 by treaty", "3": ""})
    # q1 exact against its 2nd answer; q2 F1 2*(1/4*1)/(1/4+1) = 0.4; q3 empty = empty
    assert report["exact_match"] == pytest.approx(200 / 3)
    assert report["f1"] == pytest.approx((100 + 40 + 100) / 3)
    assert report["has_answer_f1"] == pytest.approx(70.0) and report["no_answer_count"] == 1


# ------------------------------------------------------------------------- learning
def _build(squad_files: dict[str, Path]) -> Any:
    """The shipped config on the small SQuAD subsets (128-token inputs), untrained."""
    from convai_nlp.models.question_answering import QuestionAnsweringModel

    torch.manual_seed(0)
    return QuestionAnsweringModel(
        task_config(
            "question_answering",
            **{
                "train_ds.file": str(squad_files["small_train"]),
                "train_ds.batch_size": 16,
                "validation_ds.file": str(squad_files["small_dev"]),
                "optim.lr": 3e-4,
                "max_seq_length": 128,
            },
        )
    )


@pytest.fixture(scope="module")
def built(squad_files: dict[str, Path]) -> dict[str, Any]:
    """The untrained model (pretrained encoder, fresh span head): enough for restore and
    export."""
    model = _build(squad_files)
    dev = squad_files["small_dev"]
    return {"model": model, "after": model.evaluate(str(dev)), "dev": dev}


@pytest.fixture(scope="module")
def qa(squad_files: dict[str, Path]) -> dict[str, Any]:
    """The model fine-tuned for one epoch (65 s of one core of an AVX2 machine: slow suite)."""
    model = _build(squad_files)
    before = model.evaluate(str(squad_files["small_dev"]))
    trainer = fit_quietly(model, epochs=1)
    return {
        "model": model,
        "before": before,
        "after": model.evaluate(str(squad_files["small_dev"])),
        "metrics": trainer.callback_metrics,
        "dev": squad_files["small_dev"],
    }


@pytest.mark.slow
def test_it_learns_to_answer_real_squad_questions(qa: dict[str, Any]) -> None:
    before, after = qa["before"], qa["after"]
    assert before["f1"] < 15, before
    assert after["f1"] > max(40.0, before["f1"] + 25), (before, after)
    assert after["exact_match"] > 25, after
    # validation reads with doc_stride, evaluate with inference_doc_stride: the same windows
    # on these one-sentence contexts, so the figures agree up to a near-tie or two
    assert float(qa["metrics"]["val_f1"]) == pytest.approx(after["f1"], abs=1.5)
    (answer,) = qa["model"].answer(
        ["In what year was the treaty signed?"],
        "The war ended when the treaty was signed in Paris in 1783 by both countries.",
    )
    assert answer["text"] == "1783", answer


def test_restored_archive_answers_the_same(built: dict[str, Any], tmp_path: Path) -> None:
    from convai_core.models.base import ModelBase

    path = built["model"].save_to(tmp_path / "qa.convai")
    restored = ModelBase.restore_from(path)
    assert restored.evaluate(str(built["dev"])) == built["after"]


def test_onnx_export_has_start_and_end_outputs(built: dict[str, Any], tmp_path: Path) -> None:
    report = built["model"].export(tmp_path / "qa.onnx", format="onnx")
    assert report.passed and report.max_abs_diff < 1e-3
    assert report.info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert report.info["outputs"] == ["start_logits", "end_logits"]


@pytest.mark.slow  # the answer it checks needs the trained model
def test_the_cli_answers_from_a_context_file(
    qa: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    from convai_nlp.cli import nlp_main

    path = qa["model"].save_to(tmp_path / "qa.convai")
    context = tmp_path / "context.txt"
    context.write_text(
        "The war ended when the treaty was signed in Paris in 1783 by both countries.\n"
    )
    argv = ["qa", "--model", str(path), "--context", str(context)]
    assert nlp_main([*argv, "--question", "In what year was the treaty signed?", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["text"] == "1783" and context.read_text()[result["start"] : result["end"]] == "1783"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert nlp_main(["qa", "--model", str(path), "--context", str(empty), "--question", "x?"]) == 1
    assert "empty" in capsys.readouterr().err


@pytest.mark.slow  # the answers it checks need the trained model
def test_squad_v2_answers_nothing_when_the_no_answer_score_wins(
    qa: dict[str, Any], tmp_path: Path
) -> None:
    model = qa["model"]
    context = "The war ended when the treaty was signed in Paris in 1783 by both countries."
    paragraphs = [
        {
            "context": context,
            "qas": [
                {
                    "id": "has",
                    "question": "In what year was the treaty signed?",
                    "answers": [{"text": "1783", "answer_start": context.index("1783")}],
                },
                {
                    "id": "none",
                    "question": "Who won the cup?",
                    "answers": [],
                    "is_impossible": True,
                },
            ],
        }
    ]
    v2 = _squad(tmp_path / "v2.json", paragraphs)
    try:
        model.cfg.version_2 = True
        model.cfg.null_score_diff_threshold = 1e6  # the no-answer score never wins
        always = model.evaluate(str(v2))
        model.cfg.null_score_diff_threshold = -1e6  # it always wins
        never = model.evaluate(str(v2))
    finally:
        model.cfg.version_2 = False
        model.cfg.null_score_diff_threshold = 0.0
    assert always["has_answer_exact_match"] == 100.0 and always["no_answer_exact_match"] == 0.0
    assert never["has_answer_exact_match"] == 0.0 and never["no_answer_exact_match"] == 100.0
    (nothing,) = model.answer(["Who won the cup?"], context)
    assert nothing["text"] and nothing["start"] >= 0  # SQuAD v1.1 settings: always a span
