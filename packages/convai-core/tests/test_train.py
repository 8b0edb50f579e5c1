"""`convai train`: composition, config errors, learning, run folders, resume after SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convai_core.errors import ConfigError
from convai_core.exp_manager import COMPLETED, LAST, choose_run_dir, parse_exp_manager_config
from convai_core.models import ModelBase
from convai_core.train import compose_config, list_model_configs, main
from convai_core.trainer import build_trainer

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "tests" / "scripts" / "train_script.py"
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _convai(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convai_core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_cli_training_learns_and_packs_the_best_model(tmp_path: Path) -> None:
    result = _convai(
        "train",
        "model=core/mlp_classifier",
        "trainer.max_epochs=4",
        f"exp_manager.exp_dir={tmp_path / 'exp'}",
        *QUIET,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "exp" / "core_mlp_classifier" / "version_0"
    rows = list(csv.DictReader(open(run / "csv" / "metrics.csv")))
    val_loss = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    first_train_loss = next(float(r["train_loss_step"]) for r in rows if r.get("train_loss_step"))
    assert len(val_loss) == 4, rows
    # chance level is ln(4) = 1.39; the loss falls well below the first logged training loss
    assert val_loss[-1] < 0.5 and val_loss[-1] < 0.5 * first_train_loss, (
        first_train_loss,
        val_loss,
    )
    for name in (
        "config.yaml",
        "versions.json",
        "events.jsonl",
        COMPLETED,
        "core_mlp_classifier.convai",
        f"checkpoints/{LAST}",
    ):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    # the archive holds the best checkpoint; it classifies held-out data well above chance (0.25)
    model = ModelBase.restore_from(run / "core_mlp_classifier.convai")
    loader = model.build_dataloader(model.cfg.validation_ds, "validation")
    correct = total = 0
    with torch.no_grad():
        for features, labels in loader:
            correct += int((model(features).argmax(-1) == labels).sum())
            total += len(labels)
    assert correct / total > 0.8


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_epoch=3", "trainer.max_epoch"),
        ("model=core/mlp_clasifier", "Could not find 'model/core/mlp_clasifier'"),
        ("trainer.precision=17", "trainer.precision='17' is not supported"),
        ("model.optim.lrr=1", "model.optim.lrr"),
    ],
)
def test_config_mistakes_are_clear_errors(override, expected, tmp_path, capsys) -> None:
    args = [override] if override.startswith("model=") else ["model=core/mlp_classifier", override]
    code = main([*args, f"exp_manager.exp_dir={tmp_path}", "trainer.max_steps=1", *QUIET])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err


def test_missing_model_lists_the_options(capsys) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "core/mlp_classifier" in err


def test_help_lists_configs_and_registered_models(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "core/mlp_classifier" in out and "trainer.max_steps" in out
    assert "core/mlp_classifier" in list_model_configs()


def test_registry_key_selects_its_config() -> None:
    cfg = compose_config(["model=core/mlp_classifier", "model.hidden_dim=8"])
    assert cfg.model.name == "core/mlp_classifier" and cfg.model.hidden_dim == 8


def test_precision_and_trainer_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match="16-mixed needs a CUDA GPU"):
        build_trainer({"accelerator": "cpu", "precision": "16-mixed"})
    with pytest.raises(ConfigError, match=r"Did you mean trainer\.max_steps"):
        build_trainer({"max_step": 3})


def test_bf16_mixed_precision_trains_on_cpu(tmp_path) -> None:
    code = main(
        [
            "model=core/mlp_classifier",
            "trainer.max_steps=5",
            "trainer.accelerator=cpu",
            "trainer.precision=bf16-mixed",
            f"exp_manager.exp_dir={tmp_path}",
            *QUIET,
        ]
    )
    assert code == 0
    events = (tmp_path / "core_mlp_classifier" / "version_0" / "events.jsonl").read_text()
    assert json.loads(events.splitlines()[-1])["global_step"] == 5


def test_run_folder_rules(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    cfg = parse_exp_manager_config({"exp_dir": str(tmp_path)})
    first = choose_run_dir(cfg, default_name="core/x")
    assert first == tmp_path / "core_x" / "version_0"
    (first / "checkpoints").mkdir(parents=True)
    (first / "checkpoints" / LAST).write_bytes(b"")
    assert choose_run_dir(cfg, default_name="core/x") == first  # unfinished: resumed
    no_resume = parse_exp_manager_config({"exp_dir": str(tmp_path), "resume": False})
    assert choose_run_dir(no_resume, default_name="core/x").name == "version_1"
    (first / COMPLETED).write_text("")
    assert choose_run_dir(cfg, default_name="core/x").name == "version_1"  # finished: new one
    with pytest.raises(ConfigError, match=r"exp_manager\.version"):
        choose_run_dir(cfg, default_name="core/x", num_nodes=2)
    with pytest.raises(ConfigError, match=r"exp_manager\.checkpoint\.monitr"):
        parse_exp_manager_config({"checkpoint": {"monitr": "x"}})


def _script(
    out: Path, *overrides: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *overrides],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_sigkill_mid_epoch_then_same_command_resumes(tmp_path: Path) -> None:
    """Killed with SIGKILL in the middle of epoch 2, the same command resumes from last.ckpt."""
    common = [
        "model=core/mlp_classifier",
        "trainer.max_epochs=3",
        *QUIET,
        f"exp_manager.exp_dir={tmp_path / 'exp'}",
        "exp_manager.checkpoint.every_n_train_steps=5",
    ]
    reference = _script(tmp_path / "ref", *common, "exp_manager.name=reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    ref_step = json.loads((tmp_path / "ref" / "rank0.json").read_text())["global_step"]
    assert ref_step == 96  # 3 epochs of 32 batches

    killed = _script(
        tmp_path / "k", *common, "exp_manager.name=killed", env={"TEST_KILL_AT_STEP": "45"}
    )
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL, no clean shutdown
    assert not (tmp_path / "k" / "rank0.json").exists()
    run = tmp_path / "exp" / "killed" / "version_0"
    assert (run / "checkpoints" / LAST).is_file() and not (run / COMPLETED).exists()

    resumed = _script(tmp_path / "k", *common, "exp_manager.name=killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "resume", "end"]
    assert events[1]["global_step"] == 45  # the last checkpoint, mid-epoch (epoch 1, batch 13)
    record = json.loads((tmp_path / "k" / "rank0.json").read_text())
    assert record["global_step"] == ref_step
    assert record["run_dir"] == str(run)
    assert record["metrics"]["val_accuracy"] > 0.8


def test_training_in_a_log_writes_progress_lines(tmp_path: Path) -> None:
    """Standard error is a pipe here: lines with step, loss and times, no carriage returns."""
    result = _convai(
        "train",
        "model=core/mlp_classifier",
        "trainer.max_steps=30",
        "trainer.enable_model_summary=false",
        f"exp_manager.exp_dir={tmp_path / 'exp'}",
        cwd=tmp_path,
        env={"CONVAI_PROGRESS_EVERY_S": "0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: ")]
    assert re.fullmatch(
        r"train: step \d+/30 \(\d+%\), loss \d+\.\d{3}, 0:\d\d elapsed, ~0:\d\d left", lines[0]
    ), lines[:3]
    steps = [int(m.group(1)) for m in map(re.compile(r"train: step (\d+)/").match, lines) if m]
    assert len(steps) >= 10 and steps == sorted(steps)
    assert re.fullmatch(r"train: done at step 30, loss \d+\.\d{3}, 0:\d\d", lines[-1]), lines[-1]


def test_progress_line_in_a_terminal_is_rewritten_in_place() -> None:
    import io
    from types import SimpleNamespace

    from convai_core.progress import ProgressLines, format_seconds

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    progress = ProgressLines(stream=out)
    trainer = SimpleNamespace(global_step=0, max_steps=200, callbacks=[], is_global_zero=True)
    progress.on_train_start(trainer, None)  # type: ignore[arg-type]
    progress._start -= 60  # a minute has passed, a quarter of the steps are done
    trainer.global_step = 50
    progress._last = 0.0
    progress.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.25)}, None, 0)  # type: ignore[arg-type]
    assert out.getvalue() == "\rtrain: step 50/200 (25%), loss 1.250, 1:00 elapsed, ~3:00 left"
    assert (format_seconds(59.6), format_seconds(3725)) == ("1:00", "1:02:05")


def test_model_archive_fine_tunes_the_archive_as_it_is(tmp_path: Path) -> None:
    """``model=PATH.convai``: the archive's own architecture (not the option's defaults), the
    command line's model.* overrides on top, and a warm start from every weight of it."""
    from convai_core.models.mlp_classifier import MLPClassifier

    base = compose_config(["model=core/mlp_classifier", "model.hidden_dim=8"]).model
    model = MLPClassifier(base)
    archive = model.save_to(tmp_path / "base.convai")
    cfg = compose_config([f"model={archive}", "model.optim.lr=0.5", "trainer.max_steps=2"])
    assert cfg.model.name == "core/mlp_classifier"
    assert cfg.model.hidden_dim == 8  # the archive's, where the shipped config says 64
    assert cfg.model.optim.lr == 0.5 and cfg.trainer.max_steps == 2
    assert cfg.init_from.archive == str(archive)
    # keys the model option lacks apply to the archive's config; an explicit null is kept
    other = compose_config([f"model={archive}", "model.extra_setting=3", "init_from.archive=null"])
    assert other.model.extra_setting == 3 and other.init_from.archive is None
    run = tmp_path / "runs"
    code = main([f"model={archive}", "trainer.max_steps=1", "model.optim.lr=1e-9",
                 f"exp_manager.exp_dir={run}", *QUIET])  # fmt: skip
    assert code == 0
    tuned = ModelBase.restore_from(next(run.rglob("*.convai")))
    for key, tensor in model.state_dict().items():  # warm-started: one tiny step away
        assert torch.allclose(tuned.state_dict()[key], tensor, atol=1e-5), key
    with pytest.raises(ConfigError, match=r"deleting keys \(~model\.dropout\) is not supported"):
        compose_config([f"model={archive}", "~model.dropout"])


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (None, False),
        ({"manifest": None, "batch_size": 8}, False),  # the demo's validation_ds.manifest=null
        ({"file": None, "slots_file": None}, False),
        ({"manifest": "dev.jsonl"}, True),
        ({"file": "dev.tsv"}, True),
        ({"num_samples": 64}, True),  # data made by the model itself (core/mlp_classifier)
    ],
)
def test_a_validation_section_without_data_monitors_nothing(section, expected) -> None:
    """No checkpoint waits for a val_loss that a null validation manifest never logs."""
    from omegaconf import OmegaConf

    from convai_core.train import _has_validation

    node = None if section is None else OmegaConf.create(section)
    assert _has_validation(node) is expected
