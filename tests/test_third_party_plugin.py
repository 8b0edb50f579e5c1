"""A third-party plugin, built and installed like any distribution, extends convai untouched.

The test writes two throwaway projects (a working plugin with a model, a config and an entry point
in group ``convai``, and a broken one whose module fails to import), builds and installs them into
a target folder, and drives the real ``convai`` command line with that folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"

[project]
name = "{dist}"
version = "{version}"
description = "A throwaway convai plugin used by convai's tests."
requires-python = ">=3.10"
dependencies = ["convai-core>=0.1.0,<0.2"]

[project.entry-points.convai]
{ep} = "{module}.plugin"

[tool.poetry]
packages = [{{ include = "{module}", from = "src" }}]
"""

TOY_PLUGIN = """
from convai_core.hookspecs import hookimpl


@hookimpl
def convai_register_models(registry):
    registry.add("toy/regressor", "convai_toy.model:ToyRegressor",
                 description="linear regression on synthetic data (third-party test plugin)")


@hookimpl
def convai_config_search_path():
    return ["pkg://convai_toy.conf"]
"""

TOY_MODEL = """
import torch
from torch.utils.data import DataLoader, TensorDataset

from convai_core.models import ModelBase


class ToyRegressor(ModelBase):
    def __init__(self, cfg, trainer=None):
        super().__init__(cfg, trainer)
        self.linear = torch.nn.Linear(int(self.cfg.in_dim), 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)

    def build_dataloader(self, data_cfg, split):
        gen = torch.Generator().manual_seed(int(data_cfg.seed))
        x = torch.randn(int(data_cfg.num_samples), int(self.cfg.in_dim), generator=gen)
        y = x @ torch.arange(1.0, int(self.cfg.in_dim) + 1) + 0.5
        return DataLoader(TensorDataset(x, y), batch_size=int(data_cfg.batch_size))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss
"""

TOY_CONFIG = """
name: toy/regressor
in_dim: 3
train_ds:
  num_samples: 64
  batch_size: 16
  seed: 0
optim:
  name: sgd
  lr: 0.05
"""


def _write_project(root: Path, dist: str, module: str, ep: str, files: dict[str, str]) -> Path:
    project = root / dist
    (project / "src" / module).mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(dist=dist, version="0.4.2", ep=ep, module=module)
    )
    (project / "README.md").write_text(f"# {dist}\n")
    for rel, text in files.items():
        path = project / "src" / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return project


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    toy = _write_project(
        root,
        "convai-toy-plugin",
        "convai_toy",
        "toy",
        {
            "__init__.py": "",
            "plugin.py": TOY_PLUGIN,
            "model.py": TOY_MODEL,
            "conf/__init__.py": "",
            "conf/model/toy/regressor.yaml": TOY_CONFIG,
        },
    )
    broken = _write_project(
        root,
        "convai-broken-plugin",
        "convai_broken",
        "broken",
        {
            "__init__.py": "",
            "plugin.py": "import a_module_that_is_not_installed\n",
        },
    )
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(toy),
            str(broken),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return site


def _convai(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("CONVAI_STRICT_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "convai_core.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_plugin_model_is_listed_trained_and_restored(plugin_site: Path, tmp_path: Path) -> None:
    listed = _convai(plugin_site, "models", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    models = {m["key"]: m for m in json.loads(listed.stdout)["models"]}
    assert models["toy/regressor"]["distribution"] == "convai-toy-plugin"
    assert models["toy/regressor"]["version"] == "0.4.2"
    assert "core/mlp_classifier" in models
    # the broken plugin beside it is reported, not fatal
    assert "convai-broken-plugin 0.4.2" in listed.stderr
    assert "a_module_that_is_not_installed" in listed.stderr

    status = {
        p["distribution"]: p["status"]
        for p in json.loads(_convai(plugin_site, "plugins", "--json", cwd=tmp_path).stdout)
    }
    assert status["convai-toy-plugin"] == "loaded" and status["convai-broken-plugin"] == "failed"

    trained = _convai(
        plugin_site,
        "train",
        "model=toy/regressor",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        f"exp_manager.exp_dir={tmp_path / 'exp'}",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = tmp_path / "exp" / "toy_regressor" / "version_0"
    archive = run / "toy_regressor.convai"
    assert archive.is_file()
    assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["global_step"] == 2

    check = textwrap.dedent(f"""
        import torch
        from convai_core.models import ModelBase
        from convai_toy.model import ToyRegressor
        restored = ModelBase.restore_from({str(archive)!r})
        assert type(restored) is ToyRegressor
        ckpt = torch.load({str(run / "checkpoints" / "last.ckpt")!r}, weights_only=False)
        trained = ToyRegressor(restored.cfg)
        trained.load_state_dict(ckpt["state_dict"])
        x = torch.randn(7, 3)
        assert torch.equal(restored(x), trained(x)), "restored outputs differ"
        assert not torch.equal(trained(x), ToyRegressor(restored.cfg)(x))
        print("IDENTICAL")
    """)
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "IDENTICAL" in result.stdout, result.stderr[-3000:]


def test_train_help_lists_the_plugin_config(plugin_site: Path, tmp_path: Path) -> None:
    result = _convai(plugin_site, "train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "toy/regressor" in result.stdout and "pkg://convai_toy.conf" in result.stdout
