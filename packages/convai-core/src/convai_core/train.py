"""``convai train``: compose a config with Hydra and train a registered model.

``convai train model=<option> [key=value ...]`` composes ``convai_core.conf/train.yaml`` with the
model configs of every installed package (their ``convai_config_search_path`` folders) and the
command-line overrides, then builds the trainer, the run folder, and the model, and fits it. The
same command resumes an interrupted run, and trains on CPU, GPUs, with DDP or on several nodes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convai_core.errors import ConfigError, ConvaiError
from convai_core.registry import get_registries

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("convai.train")

PRIMARY_CONFIG_MODULE = "convai_core.conf"
PRIMARY_CONFIG = "train"


def search_path() -> list[str]:
    """Config folders contributed by installed plugins, core first."""
    return list(dict.fromkeys(get_registries().config_search_path))


def _folder(entry: str) -> Any:
    if entry.startswith("pkg://"):
        return resources.files(entry[len("pkg://") :])
    if entry.startswith("file://"):
        return Path(entry[len("file://") :])
    return Path(entry)


def list_model_configs() -> dict[str, str]:
    """Model config options (``model=<option>``) -> the search-path folder that provides them."""
    options: dict[str, str] = {}
    for entry in search_path():
        try:
            root = _folder(entry) / "model"
        except (ModuleNotFoundError, TypeError):
            continue
        stack = [(root, "")]
        while stack:
            node, prefix = stack.pop()
            if not node.is_dir():
                continue
            for child in node.iterdir():
                if child.is_dir():
                    stack.append((child, f"{prefix}{child.name}/"))
                elif child.name.endswith(".yaml"):
                    options.setdefault(prefix + child.name[: -len(".yaml")], entry)
    return dict(sorted(options.items()))


def _translate_model_override(overrides: list[str]) -> list[str]:
    """``model=<registry key>`` -> ``model=<its config option>`` when the two differ."""
    models = get_registries().models
    result = []
    for item in overrides:
        if item.startswith("model="):
            value = item[len("model=") :]
            if value in models:
                option = models.get(value).metadata.get("config") or value
                item = f"model={option}"
        result.append(item)
    return result


def _archive_model(overrides: list[str]) -> tuple[list[str], str | None]:
    """``model=PATH.convai``: compose with the archive's registry key, and return its path."""
    for index, item in enumerate(overrides):
        if item.startswith("model=") and item.endswith(".convai"):
            from convai_core.archive import read_manifest

            path = item[len("model=") :]
            key = read_manifest(path).get("model")
            if not isinstance(key, str) or not key:
                raise ConfigError(f"{path}: the archive names no model registry key")
            return [*overrides[:index], f"model={key}", *overrides[index + 1 :]], path
    return overrides, None


def _use_archive_model(cfg: DictConfig, path: str, overrides: Sequence[str]) -> None:
    """Replace ``cfg.model`` by the archive's own model config with the command line's
    ``model.*`` overrides on top, and warm-start every weight from the archive (unless the
    command line sets ``init_from.archive``, to another archive or to null).

    The overrides are parsed by Hydra's parser but applied here, to the archive's config (they
    were kept out of the composition, whose model option may lack the archive's keys). A
    ``<node>.name`` override that changes a component's registry key starts that node afresh,
    keeping only the keys the command line sets below it, as :func:`compose_config` does.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig, OmegaConf

    from convai_core.models.base import archive_model_config

    mine = [o for o in overrides if _override_path(o).startswith("model.")]
    parsed = OverridesParser.create().parse_overrides(mine)
    deletions = [text for text, o in zip(mine, parsed, strict=True) if o.is_delete()]
    if deletions:
        raise ConfigError(
            f"model={path}: deleting keys ({', '.join(deletions)}) is not supported when the "
            "model config comes from an archive; set them to null instead"
        )
    model = OmegaConf.create(archive_model_config(path))
    values = {o.key_or_group[len("model.") :]: o.value() for o in parsed}
    for key, value in values.items():
        if not key.endswith(".name"):
            continue
        node_key = key[: -len(".name")]
        node = OmegaConf.select(model, node_key)
        if isinstance(node, DictConfig) and node.get("name") != value:
            below = {k[len(node_key) + 1 :] for k in values if k.startswith(node_key + ".")}
            OmegaConf.update(model, node_key, {}, merge=False, force_add=True)
            dropped = sorted(str(k) for k in node if k not in below)
            if dropped:
                log.info("model.%s: %s replaces %s; dropped %s", key, value, node.get("name"),
                         ", ".join(dropped))  # fmt: skip
    for key, value in values.items():
        OmegaConf.update(model, key, value, merge=True, force_add=True)
    cfg.model = model
    if not any(_override_path(o) == "init_from.archive" for o in overrides):
        cfg.init_from.archive = path


def _override_path(override: str) -> str:
    """The dotted key an override sets (``+model.encoder.name=x`` -> ``model.encoder.name``)."""
    return override.split("=", 1)[0].lstrip("+~")


def _component_renames(overrides: Sequence[str]) -> list[str]:
    """Config paths of component nodes whose ``name`` the overrides set."""
    paths = []
    for override in overrides:
        if "=" in override and not override.startswith("~"):
            key = _override_path(override)
            if key.endswith(".name") and key.count(".") >= 2:  # a node below model/trainer...
                paths.append(key[: -len(".name")])
    return paths


def _restart_renamed_components(
    cfg: DictConfig, base: DictConfig, paths: Sequence[str], overrides: Sequence[str]
) -> None:
    """Start each component node whose registry key the command line changed afresh.

    ``model.encoder.name=acme/lstm`` on a config whose encoder is ``asr/jasper_encoder`` would
    otherwise hand the Jasper keys (``blocks``...) to the new component. The node keeps its new
    ``name`` and the keys the same command line sets below it; the dropped keys are logged.
    """
    from omegaconf import DictConfig, OmegaConf

    for path in paths:
        old = OmegaConf.select(base, path)
        new = OmegaConf.select(cfg, path)
        if not isinstance(old, DictConfig) or not isinstance(new, DictConfig):
            continue
        if old.get("name") == new.get("name"):
            continue
        given = {
            _override_path(o)[len(path) + 1 :].split(".", 1)[0]
            for o in overrides
            if _override_path(o).startswith(path + ".")
        }
        dropped = sorted(str(k) for k in new if k not in given)
        fresh = OmegaConf.create({k: new[k] for k in new if k in given})
        OmegaConf.update(cfg, path, fresh, merge=False, force_add=True)
        if dropped:
            log.info(
                "%s.name: %s replaces %s; its settings %s were dropped (set %s.<key> for the "
                "new component's own)",
                path,
                new.get("name"),
                old.get("name"),
                ", ".join(dropped),
                path,
            )


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """Compose the training config from the installed packages' configs and ``overrides``.

    An override that names another registry key for a component node (``model.encoder.name=
    acme/lstm``) starts that node afresh: it keeps only the keys the command line sets below it
    (``+model.encoder.hidden=256``), so the old component's settings never reach the new one.

    ``model=PATH.convai`` fine-tunes an archive as it is: the model config is the archive's own
    (its architecture, tokenizer and settings; artifacts extracted), the command line's
    ``model.*`` overrides apply on top (a new ``model.tokenizer`` gives a new output layer), and
    ``init_from.archive`` defaults to the archive, so every weight that still fits is loaded.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    extra = [p for p in search_path() if p != f"pkg://{PRIMARY_CONFIG_MODULE}"]
    hydra_overrides = [f"hydra.searchpath=[{','.join(extra)}]"] if extra else []
    user, archive_path = _archive_model(list(overrides))
    user = _translate_model_override(user)
    given = user
    if archive_path is not None:  # model.* overrides apply to the archive's config, later
        user = [o for o in user if not _override_path(o).startswith("model.")]
    renamed = _component_renames(user)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(PRIMARY_CONFIG_MODULE, version_base=None):
            if renamed:
                kept = [o for o in user if _override_path(o) not in {f"{p}.name" for p in renamed}]
                base = compose(PRIMARY_CONFIG, overrides=hydra_overrides + kept)
            cfg = compose(PRIMARY_CONFIG, overrides=hydra_overrides + user)
        if renamed:
            _restart_renamed_components(cfg, base, renamed, user)
    except (HydraException, OmegaConfBaseException) as exc:
        options = ", ".join(list_model_configs()) or "none"
        raise ConfigError(
            f"Could not compose the training config: {exc}\nModel options: {options}. "
            f"Run `convai train --help` for the config keys."
        ) from exc
    finally:
        GlobalHydra.instance().clear()
    if archive_path is not None:
        _use_archive_model(cfg, archive_path, given)
    if "name" not in cfg.model:
        raise ConfigError("model.name is missing: a model config must name its registry key")
    return cfg


@dataclass
class TrainResult:
    run_dir: Path
    archive: Path | None
    metrics: dict[str, float]
    global_step: int
    global_rank: int
    model: Any


#: The keys a data section names its data by (ASR manifests, NLP files).
_DATA_SOURCE_KEYS = ("manifest", "file", "files")


def _has_validation(section: Any) -> bool:
    """Whether ``model.validation_ds`` gives data: a section whose data key is null (the demo's
    ``model.validation_ds.manifest=null``) has none, so no checkpoint waits for ``val_loss``."""
    if section is None:
        return False
    keys = [k for k in _DATA_SOURCE_KEYS if k in section]
    return not keys or any(section.get(k) is not None for k in keys)


def train(cfg: DictConfig, *, extra_callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train the model described by a composed config (see :func:`compose_config`).

    ``extra_callbacks`` are Lightning callbacks added to the run's own.
    """
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from convai_core.exp_manager import setup_experiment
    from convai_core.models.base import ModelBase
    from convai_core.trainer import build_trainer, parse_trainer_config

    model_key = str(cfg.model.name)
    model_cls = get_registries().models.load(model_key)
    if not (isinstance(model_cls, type) and issubclass(model_cls, ModelBase)):
        raise ConfigError(f"model.name={model_key!r} does not name a ModelBase subclass")
    trainer_cfg = parse_trainer_config(cfg.trainer)
    pl.seed_everything(int(cfg.get("seed", 1234)), workers=True, verbose=False)
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    exp = setup_experiment(
        cfg.get("exp_manager"),
        model_name=model_key,
        full_config=plain,
        trainer_cfg=trainer_cfg,
        has_validation=_has_validation(cfg.model.get("validation_ds")),
    )
    callbacks = [*exp.callbacks, *extra_callbacks]
    if trainer_cfg.enable_progress_bar and not sys.stderr.isatty():
        # a progress bar in a log is one endless line of carriage returns: write lines instead
        from convai_core.progress import ProgressLines

        trainer_cfg.enable_progress_bar = False
        every = os.environ.get("CONVAI_PROGRESS_EVERY_S", "30")
        try:
            every_s = float(every)
        except ValueError:
            raise ConfigError(
                f"CONVAI_PROGRESS_EVERY_S={every!r} is not a number of seconds"
            ) from None
        callbacks.append(ProgressLines(every_s))
    trainer = build_trainer(
        trainer_cfg,
        callbacks=callbacks,
        logger=exp.loggers or False,
        default_root_dir=exp.run_dir,
        use_distributed_sampler=not model_cls.SHARDS_ITS_OWN_DATA,
    )
    model = model_cls(cfg.model, trainer=trainer)
    init: Any = cfg.get("init_from") or {}
    if init.get("archive") and exp.resume_from is None:
        report = model.warm_start_from(
            init.archive, prefixes=init.get("prefixes"), exclude=init.get("exclude") or ()
        )
        log.info("warm start from %s: %d tensors loaded", init.archive, len(report["loaded"]))
    if exp.resume_from is not None and trainer.is_global_zero:
        print(f"convai: resuming {exp.run_dir} from {exp.resume_from}", file=sys.stderr)
    trainer.fit(model, ckpt_path=str(exp.resume_from) if exp.resume_from else None)
    archive = exp.finalize(trainer, model)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return TrainResult(
        exp.run_dir, archive, metrics, trainer.global_step, trainer.global_rank, model
    )


def _help_text() -> str:
    options = list_model_configs()
    models = get_registries().models
    lines = [
        "usage: convai train model=<option> [key=value ...] [+new_key=value ...]",
        "",
        "Train a model. The config is composed by Hydra from the packages you installed; any key",
        "can be overridden on the command line. Running the same command again resumes the newest",
        "unfinished run from its last checkpoint.",
        "",
        "model options (model=<option>):",
    ]
    for option, source in options.items():
        lines.append(f"  {option:<32} {source}")
    if not options:
        lines.append("  (none: install a convai domain package)")
    lines += [
        "  PATH.convai                      fine-tune an archive as it is: its own model config,",
        "                                   model.* overrides on top, every fitting weight loaded",
    ]
    lines += ["", "registered model keys (model=<key> also works):"]
    for entry in models:
        lines.append(f"  {entry.key:<32} {entry.description} [{entry.provenance.distribution}]")
    lines += [
        "",
        "common overrides:",
        "  trainer.max_epochs=N trainer.max_steps=N trainer.devices=N trainer.accelerator=cpu|gpu",
        "  trainer.strategy=ddp trainer.num_nodes=N trainer.precision=32|16-mixed|bf16-mixed",
        "  exp_manager.exp_dir=DIR exp_manager.name=NAME exp_manager.version=V exp_manager.resume=false",
        "  exp_manager.checkpoint.every_n_train_steps=N init_from.archive=PATH.convai",
        "  --cfg        print the composed config and exit",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``convai train``."""
    argv = list(sys.argv[2:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(_help_text())
        return 0
    parser = argparse.ArgumentParser(prog="convai train", add_help=False)
    parser.add_argument("--cfg", action="store_true")
    known, overrides = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = compose_config(overrides)
        if known.cfg:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(cfg))
            return 0
        result = train(cfg)
    except ConvaiError as exc:
        print(f"convai train: error: {exc}", file=sys.stderr)
        return 2
    if result.archive is not None:
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()))
        print(f"convai train: done at step {result.global_step}; run folder {result.run_dir}")
        print(f"convai train: model archive {result.archive}")
        if metrics:
            print(f"convai train: final metrics {metrics}")
    return 0
