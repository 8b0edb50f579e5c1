"""Fine-tune MiniLM-L6 on real NLP data with `convai train` and score it on the test sets.

Each task fetches its corpus (`convai nlp data`), trains with the same `convai train` command a
user runs (2 CPU threads, at most --minutes of training), restores the archive and scores the
held-out test set. Prints a table and writes JSON with one object per task key:

  conll2003    test_f1 (entity level, seqeval), per-type F1          CoNLL-2003 English
  sentiment    accuracy, macro_f1 on the held-out 10%                 Pang & Lee sentences
  atis         intent_accuracy, slot_f1 (entity level) on the test set  ATIS (NeMo format)
  punctuation  period_f1, comma_f1, question_f1, capitalization_f1     SQuAD v1.1 Wikipedia:
               on the held-out articles (SQuAD's dev set), trained on --punct-lines lines

    python benchmarks/nlp_quality.py [--tasks conll2003,sentiment] [--json OUT] [--minutes 14]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "nlp_quality.json"
KEEP = ""  # --keep: where to copy the trained archives
EXTRA: list[str] = []  # --set: overrides added to every task's `convai train`


def _train(
    model: str, overrides: list[str], minutes: float, run_dir: Path, monitor: str
) -> tuple[Path, float]:
    """Run `convai train` keeping the checkpoint of the best ``monitor`` (a validation score,
    higher is better); returns the archive and the wall-clock minutes of the run."""
    limit = int(minutes * 60)
    command = [
        sys.executable,
        "-m",
        "convai_core.cli",
        "train",
        f"model={model}",
        *overrides,
        *EXTRA,
        f"trainer.max_time=00:00:{limit // 60:02d}:{limit % 60:02d}",
        "trainer.num_sanity_val_steps=0",
        "exp_manager.checkpoint.save_top_k=1",
        f"exp_manager.checkpoint.monitor={monitor}",
        "exp_manager.checkpoint.mode=max",
        f"exp_manager.exp_dir={run_dir}",
        "exp_manager.name=run",
    ]
    print("$ convai train " + " ".join(command[4:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=run_dir)
    minutes_used = (time.perf_counter() - start) / 60
    archives = sorted(run_dir.glob("run/version_*/*.convai"))
    if not archives:
        raise SystemExit(f"no archive written under {run_dir}")
    if KEEP:
        Path(KEEP).mkdir(parents=True, exist_ok=True)
        shutil.copy(archives[-1], Path(KEEP) / f"{model.split('/')[-1]}.convai")
    return archives[-1], minutes_used


def conll2003(minutes: float, run_dir: Path) -> dict[str, Any]:
    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare

    files = prepare("conll2003")
    archive, used = _train(
        "nlp/token_classification",
        [
            f"model.train_ds.text_file={files['train_text']}",
            f"model.train_ds.labels_file={files['train_labels']}",
            f"model.validation_ds.text_file={files['dev_text']}",
            f"model.validation_ds.labels_file={files['dev_labels']}",
            "model.train_ds.batch_size=32",
            "model.optim.lr=1e-4",
            "trainer.max_epochs=4",
        ],
        minutes,
        run_dir,
        "val_f1",
    )
    model = ModelBase.restore_from(archive)
    test = model.evaluate(str(files["test_text"]), str(files["test_labels"]))  # type: ignore[attr-defined]
    dev = model.evaluate(str(files["dev_text"]), str(files["dev_labels"]))  # type: ignore[attr-defined]
    return {
        "test_f1": test["f1"],
        "test_precision": test["precision"],
        "test_recall": test["recall"],
        "valid_f1": dev["f1"],
        "per_type_f1": {k: v["f1"] for k, v in test["per_type"].items()},
        "train_minutes": used,
    }


def sentiment(minutes: float, run_dir: Path) -> dict[str, Any]:
    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare

    files = prepare("sentiment")
    archive, used = _train(
        "nlp/text_classification",
        [
            f"model.train_ds.file={files['train']}",
            f"model.validation_ds.file={files['dev']}",
            "model.train_ds.batch_size=32",
            "model.optim.lr=5e-5",
            "trainer.max_epochs=3",
        ],
        minutes,
        run_dir,
        "val_accuracy",
    )
    model = ModelBase.restore_from(archive)
    test = model.evaluate(str(files["test"]))  # type: ignore[attr-defined]
    return {
        "accuracy": test["accuracy"],
        "macro_f1": test["macro_f1"],
        "test_count": test["count"],
        "train_minutes": used,
    }


def atis(minutes: float, run_dir: Path) -> dict[str, Any]:
    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare

    files = prepare("atis")
    archive, used = _train(
        "nlp/intent_slot",
        [
            f"model.intent_dict={files['intents']}",
            f"model.slot_dict={files['slots']}",
            f"model.train_ds.file={files['train']}",
            f"model.train_ds.slots_file={files['train_slots']}",
            f"model.validation_ds.file={files['dev']}",
            f"model.validation_ds.slots_file={files['dev_slots']}",
            "model.train_ds.batch_size=32",
            "model.optim.lr=1e-4",
            "trainer.max_epochs=12",
        ],
        minutes,
        run_dir,
        "val_slot_f1",
    )
    model = ModelBase.restore_from(archive)
    test = model.evaluate(str(files["test"]), str(files["test_slots"]))  # type: ignore[attr-defined]
    return {
        "intent_accuracy": test["intent_accuracy"],
        "slot_f1": test["slot_f1"],
        "slot_precision": test["slot_precision"],
        "slot_recall": test["slot_recall"],
        "train_minutes": used,
    }


PUNCT_TRAIN_LINES = 40000  # one whole epoch (lr decayed to 0) fits in 14 minutes (--punct-lines)
PUNCT_DEV_LINES = 1000


def punctuation(minutes: float, run_dir: Path) -> dict[str, Any]:
    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare
    from convai_nlp.testing import subset

    files = prepare("punctuation")
    data = {
        "train_text": subset(files["train_text"], run_dir / "train_text.txt", PUNCT_TRAIN_LINES),
        "train_labels": subset(
            files["train_labels"], run_dir / "train_labels.txt", PUNCT_TRAIN_LINES
        ),
        "dev_text": subset(files["dev_text"], run_dir / "dev_text.txt", PUNCT_DEV_LINES),
        "dev_labels": subset(files["dev_labels"], run_dir / "dev_labels.txt", PUNCT_DEV_LINES),
    }
    archive, used = _train(
        "nlp/punctuation_capitalization",
        [
            f"model.train_ds.text_file={data['train_text']}",
            f"model.train_ds.labels_file={data['train_labels']}",
            f"model.validation_ds.text_file={data['dev_text']}",
            f"model.validation_ds.labels_file={data['dev_labels']}",
            "model.train_ds.batch_size=32",
            "model.optim.lr=3e-4",
            "trainer.max_epochs=1",
            "trainer.val_check_interval=0.5",
        ],
        minutes,
        run_dir,
        "val_punct_f1",
    )
    model = ModelBase.restore_from(archive)
    test = model.evaluate(str(files["test_text"]), str(files["test_labels"]))  # type: ignore[attr-defined]
    example = model.add_punctuation_capitalization(  # type: ignore[attr-defined]
        ["where was the treaty signed it was signed in paris in 1783 by the united states"]
    )[0]
    return {
        "period_f1": test["period_f1"],
        "comma_f1": test["comma_f1"],
        "question_f1": test["question_f1"],
        "capitalization_f1": test["capitalization_f1"],
        "train_lines": PUNCT_TRAIN_LINES,
        "test_words": test["punctuation"]["count"],
        "example": example,
        "train_minutes": used,
    }


SQUAD_TRAIN_QUESTIONS = 9000  # one epoch (lr decayed to 0) fits in 20 minutes on 2 cores
SQUAD_SAMPLE_SEED = 0


def squad(minutes: float, run_dir: Path) -> dict[str, Any]:
    """SQuAD v1.1: train on a random sample of the training questions, score the fixed
    1,000-question dev subset (``dev-1000.json``) and the whole dev set."""
    import random

    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare
    from convai_nlp.data.squad import subset_squad

    files = prepare("squad")
    data = json.loads(Path(files["train"]).read_text())
    ids = [qa["id"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    keep = set(random.Random(SQUAD_SAMPLE_SEED).sample(ids, SQUAD_TRAIN_QUESTIONS))
    train = run_dir / "train-sample.json"
    train.write_text(json.dumps(subset_squad(data, keep)))
    archive, used = _train(
        "nlp/question_answering",
        [
            f"model.train_ds.file={train}",
            f"model.validation_ds.file={files['dev_1000']}",
            "model.train_ds.batch_size=16",
            "model.optim.lr=2e-4",
            "trainer.max_epochs=1",
        ],
        minutes,
        run_dir,
        "val_f1",
    )
    model = ModelBase.restore_from(archive)
    start = time.perf_counter()
    subset = model.evaluate(str(files["dev_1000"]))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    return {
        "exact_match": subset["exact_match"],
        "f1": subset["f1"],
        "dev_questions": subset["count"],
        "dev_subset": "dev-1000.json: random.Random(1000).sample of the 10,570 dev question ids",
        "train_questions": SQUAD_TRAIN_QUESTIONS,
        "eval_seconds": seconds,
        "train_minutes": used,
    }


GLUE_VALIDATION_EXAMPLES = 2000


def _glue_subsets(
    task: str, files: dict[str, Path], run_dir: Path, train_examples: int | None
) -> dict[str, Path]:
    """A random sample of the training file (all of it when ``train_examples`` is None) and
    the first validation examples, written in the task's format."""
    import random

    from convai_nlp.data.glue import read_glue, write_glue_tsv

    suffix = ".jsonl" if task == "boolq" else ".tsv"
    out = {"dev": Path(files["dev"])}
    train_rows = read_glue(task, files["train"])
    if train_examples is not None and train_examples < len(train_rows):
        train_rows = random.Random(0).sample(train_rows, train_examples)
    dev_rows = read_glue(task, files["dev"])
    dev_rows = random.Random(1).sample(dev_rows, min(len(dev_rows), GLUE_VALIDATION_EXAMPLES))
    for name, rows in (("train", train_rows), ("validation", dev_rows)):
        path = run_dir / f"{name}{suffix}"
        if task == "boolq":
            path.write_text(
                "".join(
                    json.dumps(
                        {
                            "question": r.text_a,
                            "passage": r.text_b,
                            "label": r.label == "true",
                            "idx": i,
                        }
                    )
                    + "\n"
                    for i, r in enumerate(rows)
                )
            )
        else:
            write_glue_tsv(task, rows, path)
        out[name] = path
    return out


def _glue(
    task: str, minutes: float, run_dir: Path, train_examples: int | None, overrides: list[str]
) -> dict[str, Any]:
    from convai_core.models.base import ModelBase
    from convai_nlp.data.sources import prepare

    files = _glue_subsets(task, prepare(task), run_dir, train_examples)
    archive, used = _train(
        "nlp/glue",
        [
            f"model.task={task}",
            f"model.train_ds.file={files['train']}",
            f"model.validation_ds.file={files['validation']}",
            *overrides,
        ],
        minutes,
        run_dir,
        "val_score",
    )
    model = ModelBase.restore_from(archive)
    dev = model.evaluate(str(files["dev"]))  # type: ignore[attr-defined]
    return {
        "accuracy": dev["accuracy"],
        "majority_baseline": dev["majority_baseline"],
        "dev_examples": dev["count"],
        "train_examples": train_examples,
        "train_minutes": used,
    }


def qnli(minutes: float, run_dir: Path) -> dict[str, Any]:
    """QNLI rebuilt from SQuAD: 30,000 training pairs, scored on all dev pairs (questions of
    SQuAD's dev set, never seen in training)."""
    return _glue(
        "qnli",
        minutes,
        run_dir,
        30000,
        ["model.train_ds.batch_size=32", "model.optim.lr=1e-4", "trainer.max_epochs=1"],
    )


def boolq(minutes: float, run_dir: Path) -> dict[str, Any]:
    """BoolQ: all 7,993 training questions (no passage of the official dev), scored on the
    official dev set (3,270 questions, 62.2% "true")."""
    return _glue(
        "boolq",
        minutes,
        run_dir,
        None,
        [
            "model.max_seq_length=256",
            "model.train_ds.batch_size=16",
            "model.optim.lr=5e-5",
            "trainer.max_epochs=1",
        ],
    )


TASKS = {
    "conll2003": conll2003,
    "sentiment": sentiment,
    "atis": atis,
    "punctuation": punctuation,
    "squad": squad,
    "qnli": qnli,
    "boolq": boolq,
}


def main() -> int:
    global KEEP, EXTRA, PUNCT_TRAIN_LINES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task keys")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    parser.add_argument("--minutes", type=float, default=14.0, help="training limit per task")
    parser.add_argument("--keep", help="copy each trained archive here as <task>.convai")
    parser.add_argument(
        "--punct-lines",
        type=int,
        default=PUNCT_TRAIN_LINES,
        help=f"training lines of the punctuation task (default {PUNCT_TRAIN_LINES}: about one "
        "epoch in 14 minutes of fp32 on a fast 2-core machine)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra `convai train` override for every task, after the task's own "
        "(repeatable), e.g. --set +model.backbone.freeze_layers=2",
    )
    args = parser.parse_args()
    KEEP = args.keep or ""
    PUNCT_TRAIN_LINES = args.punct_lines
    EXTRA = list(args.set)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    out = Path(args.json)
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    for task in tasks:
        print(f"== {task}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"nlp_quality_{task}_") as tmp:
            results[task] = TASKS[task](args.minutes, Path(tmp))
        results[task]["command"] = (
            f"python benchmarks/nlp_quality.py --tasks {task} --minutes {args.minutes:g}"
            + (
                f" --punct-lines {args.punct_lines}"
                if task == "punctuation" and args.punct_lines != parser.get_default("punct_lines")
                else ""
            )
            + "".join(f" --set {item}" for item in EXTRA)
        )
        results[task]["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'task':<12} {'metric':<18} {'value':>8}  train min")
    for task in tasks:
        row = results[task]
        for key, value in row.items():
            if isinstance(value, float) and key != "train_minutes":
                print(f"{task:<12} {key:<18} {value:8.4f}  {row['train_minutes']:.1f}")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
