"""Latency of extractive QA on a long context: convai against plain Hugging Face code.

The context is real Wikipedia text: the paragraphs of SQuAD v1.1 dev articles joined in order
until --words words (3,000 by default). Both sides use the same MiniLM-L6-H384 weights (a
trained `nlp/question_answering` archive with --model, else the pretrained encoder with a fresh
span head: the time does not depend on the weights), 384-token inputs, the same threads.
convai's `model.answer(question, context)` runs with the model's own window settings
(`doc_stride`) and with --long-stride; the baseline is what transformers 4's QA pipeline did
(transformers 5 removed it): the fast tokenizer's overflowing windows with 128 tokens of
overlap, one batched forward, the best span. Medians of --rounds rounds after a warm-up.

With --doc-questions N (100), N dev questions are also answered from their whole article
(every paragraph joined, thousands of words) at both strides, against their own paragraph:
what the wider stride costs in EM/F1 on long documents.

    python benchmarks/qa_speed.py [--model qa.convai] [--words 3000] [--rounds 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "qa_speed.json"
QUESTION = "Which NFL team represented the AFC at Super Bowl 50?"  # a SQuAD dev question
BASELINE = "transformers, 128-token overlap"


def long_context(words: int) -> str:
    from convai_nlp.data.sources import prepare

    data = json.loads(Path(prepare("squad")["dev"]).read_text())
    parts: list[str] = []
    count = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            parts.append(paragraph["context"])
            count += len(paragraph["context"].split())
            if count >= words:
                text = " ".join(" ".join(parts).split()[:words])
                return text
    raise SystemExit("SQuAD dev has fewer words than asked for")


def build_model(archive: str | None) -> Any:
    from convai_core.models.base import ModelBase
    from convai_nlp.models.question_answering import QuestionAnsweringModel
    from convai_nlp.testing import task_config

    if archive:
        return ModelBase.restore_from(archive)
    cfg = task_config(
        "question_answering", **{"train_ds.file": "unused", "validation_ds.file": "unused"}
    )
    return QuestionAnsweringModel(cfg)


def hf_reader(model: Any, folder: Path) -> Any:
    """Plain Hugging Face on the same encoder and span-head weights: the fast tokenizer cuts
    the context into overflowing windows (384 tokens, 128 of overlap, as the removed QA
    pipeline did), ``BertForQuestionAnswering`` scores them in one batch, and the best span
    (20 start x 20 end candidates per window, at most 30 tokens) is read off the offsets."""
    import torch
    import transformers

    encoder = model.backbone.model
    config = transformers.BertConfig(**{**encoder.config.to_dict(), "num_labels": 2})
    qa = transformers.BertForQuestionAnswering(config)
    qa.bert.load_state_dict(encoder.state_dict(), strict=False)
    linear = model.head.mlp[-1]
    with torch.no_grad():
        qa.qa_outputs.weight.copy_(linear.weight)
        qa.qa_outputs.bias.copy_(linear.bias)
    qa.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))

    def answer(question: str, context: str) -> dict[str, Any]:
        enc = tokenizer(
            question,
            context,
            truncation="only_second",
            max_length=384,
            stride=128,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping")
        enc.pop("overflow_to_sample_mapping")
        with torch.no_grad():
            out = qa(**enc)
        best = (float("-inf"), 0, 0)
        for w in range(len(offsets)):
            ids = enc.sequence_ids(w)
            start, end = out.start_logits[w], out.end_logits[w]
            for s in start.topk(20).indices.tolist():
                for e in end.topk(20).indices.tolist():
                    if ids[s] != 1 or ids[e] != 1 or e < s or e - s + 1 > 30:
                        continue
                    score = float(start[s] + end[e])
                    if score > best[0]:
                        best = (score, int(offsets[w][s][0]), int(offsets[w][e][1]))
        return {"answer": context[best[1] : best[2]], "score": best[0]}

    return answer


def whole_articles(model: Any, count: int, strides: list[int]) -> dict[str, Any]:
    """SQuAD EM/F1 of ``count`` dev questions (``random.Random(0)``) answered from their whole
    article (all its paragraphs joined: thousands of words) at each window stride, and from
    their own paragraph as SQuAD asks them."""
    import random

    from convai_nlp.data.sources import prepare
    from convai_nlp.data.squad import read_squad

    dev = Path(prepare("squad")["dev"])
    data = json.loads(dev.read_text())
    questions = read_squad(dev)
    chosen = set(random.Random(0).sample(range(len(questions)), count))
    single = {"version": "1.1", "data": []}
    whole = {"version": "1.1", "data": []}
    index = 0
    words = []
    for article in data["data"]:
        joined, shift, paragraphs, qas = "", {}, [], []
        for p, paragraph in enumerate(article["paragraphs"]):
            shift[p] = len(joined)
            joined += paragraph["context"] + "\n"
        for p, paragraph in enumerate(article["paragraphs"]):
            kept = []
            for qa in paragraph["qas"]:
                if index in chosen:
                    kept.append(qa)
                    moved = [
                        {**a, "answer_start": a["answer_start"] + shift[p]} for a in qa["answers"]
                    ]
                    qas.append({**qa, "answers": moved})
                index += 1
            if kept:
                paragraphs.append({"context": paragraph["context"], "qas": kept})
        if qas:
            single["data"].append({"title": article["title"], "paragraphs": paragraphs})
            whole["data"].append(
                {"title": article["title"], "paragraphs": [{"context": joined, "qas": qas}]}
            )
            words += [len(joined.split())] * len(qas)
    report: dict[str, Any] = {"questions": count, "mean_article_words": statistics.mean(words)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in (("paragraph", single), ("article", whole)):
            (Path(tmp) / f"{name}.json").write_text(json.dumps(content))
        scores = model.evaluate(str(Path(tmp) / "paragraph.json"))
        report["own_paragraph"] = {"exact_match": scores["exact_match"], "f1": scores["f1"]}
        for stride in strides:
            start = time.perf_counter()
            scores = model.evaluate(str(Path(tmp) / "article.json"), doc_stride=stride)
            report[f"whole_article_doc_stride_{stride}"] = {
                "exact_match": scores["exact_match"],
                "f1": scores["f1"],
                "seconds_per_question": (time.perf_counter() - start) / count,
            }
            print(
                f"whole articles, doc_stride {stride}: {report[f'whole_article_doc_stride_{stride}']}",
                flush=True,
            )
    print(f"own paragraphs: {report['own_paragraph']}", flush=True)
    return report


def timed(fn: Any, rounds: int) -> tuple[float, Any]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained nlp/question_answering archive")
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--long-stride", type=int, default=320, help="a second window stride")
    parser.add_argument(
        "--doc-questions",
        type=int,
        default=100,
        help="dev questions to answer from their whole article (0: skip)",
    )
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args()
    import torch

    from convai_nlp.backbones import backbone_folder

    threads = torch.get_num_threads()
    context = long_context(args.words)
    model = build_model(args.model).eval()
    tokens = len(model.tokenizer.encode(context))
    reader = hf_reader(model, backbone_folder("minilm-l6-h384"))
    default_stride = model.doc_stride  # the training windows' stride
    rows: dict[str, Any] = {}

    def ours(stride: int) -> Any:
        return model.answer([QUESTION], context, doc_stride=stride)[0]

    for name, fn in [
        (f"convai answer, doc_stride {default_stride}", lambda: ours(default_stride)),
        (f"convai answer, doc_stride {args.long_stride}", lambda: ours(args.long_stride)),
        (BASELINE, lambda: reader(QUESTION, context)),
    ]:
        seconds, result = timed(fn, args.rounds)
        rows[name] = {"seconds": seconds, "answer": result.get("answer", result.get("text"))}
        print(f"{name:<40} {seconds:7.3f} s   answer: {rows[name]['answer']!r}", flush=True)
    baseline = rows[BASELINE]["seconds"]
    for row in rows.values():
        row["speedup_vs_transformers"] = baseline / row["seconds"]
    documents: dict[str, Any] = {}
    if args.doc_questions:
        documents = whole_articles(model, args.doc_questions, [default_stride, args.long_stride])
    result = {
        "whole_article_contexts": documents,
        "context_words": args.words,
        "context_tokens": tokens,
        "threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "model": args.model or "pretrained encoder + fresh span head",
        "rows": rows,
        "command": "python benchmarks/qa_speed.py"
        + (" --model MODEL" if args.model else "")
        + f" --words {args.words} --rounds {args.rounds} --doc-questions {args.doc_questions}",
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as f:
        f.write(json.dumps(result, indent=2) + "\n")
    os.replace(f.name, out)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
