"""The base class of every trainable convai model.

A model is a LightningModule built from a config (``Model(cfg, trainer=None)``). It builds its own
data loaders from ``cfg.train_ds`` / ``cfg.validation_ds`` / ``cfg.test_ds``, its optimizer and LR
schedule from ``cfg.optim``, and packs itself into a ``.convai`` archive with :meth:`save_to`.
Capabilities beyond training (transcribe, export) are small protocols that subclasses implement,
not mixins of this class.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from convai_core import archive
from convai_core.errors import ArchiveError, ConfigError, ExportError, UnknownKeyError
from convai_core.optim import build_optimizer, build_scheduler, parse_optim_config

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from convai_core.export_spec import ExportSpec
    from convai_core.registry import Entry
    from convai_core.types import NeuralType

log = logging.getLogger(__name__)

#: Config values that point into an archive look like ``archive:<artifact name>``.
ARTIFACT_PREFIX = "archive:"


class ModelBase(pl.LightningModule):
    """Base class of convai models.

    Subclasses implement :meth:`forward`, :meth:`training_step`, optionally
    :meth:`validation_step`, and :meth:`build_dataloader` (``None`` for a split they do not use).
    Every subclass is registered under a key (``cfg.name``) through ``convai_register_models``.

    Args:
        cfg: the model config; ``cfg.name`` is the registry key.
        trainer: the Lightning trainer the model will be fitted with, if known.
    """

    #: Config sections that hold data settings, in the order splits are set up.
    DATA_SECTIONS: ClassVar[dict[str, str]] = {
        "train": "train_ds",
        "validation": "validation_ds",
        "test": "test_ds",
    }

    #: True when :meth:`build_dataloader` already gives each DDP rank its own share (a batch
    #: sampler built with the trainer's world size and rank): the trainer then leaves the
    #: loaders as they are instead of putting Lightning's DistributedSampler into them.
    SHARDS_ITS_OWN_DATA: ClassVar[bool] = False

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__()
        if not isinstance(cfg, DictConfig):
            cfg = OmegaConf.create(dict(cfg))
        self.cfg: DictConfig = copy.deepcopy(cfg)
        OmegaConf.set_struct(self.cfg, False)
        self._artifacts: dict[str, Path] = {}
        self._init_trainer = trainer

    # ------------------------------------------------------------------ ports (neural types)
    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        """Inputs of :meth:`forward` and their neural types (empty when undeclared)."""
        return {}

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        """Outputs of :meth:`forward` and their neural types (empty when undeclared)."""
        return {}

    # ------------------------------------------------------------------ export
    def export_spec(self, **options: Any) -> ExportSpec:
        """What export targets need: a plain module, its ports and inputs to verify with.

        The default exports :meth:`forward` as it is, checked on random inputs shaped by the
        declared ports (:func:`~convai_core.export_spec.generic_spec`). Models override this to
        export their inference path and to add real inputs (an ASR model takes
        ``preprocessor=False`` to export from features, ``verify_audio=[paths]``).

        Raises:
            ExportError: the model declares no ports, or gets options it does not know.
        """
        from convai_core.export_spec import generic_spec

        if options:
            raise ExportError(
                f"{type(self).__name__} takes no export options; got {sorted(options)}"
            )
        if not self.input_ports:
            raise ExportError(
                f"{type(self).__name__} ({self.cfg.get('name', '?')}) does not support export: "
                "it declares no input_ports; declare its ports or override export_spec()."
            )
        return generic_spec(self)

    def export(self, output: str | os.PathLike[str], format: str = "onnx", **options: Any) -> Any:
        """Export the model to ``format`` at ``output``, verified against this eager model.

        ``format`` is a key of the ``export_targets`` registry (``convai export --help`` lists
        them; convai-export provides ``onnx``, ``torchscript``, ``checkpoint``, ``trt-onnx`` and
        ``triton``, and domain packages add their own, such as convai-asr's ``asr-bundle``).
        ``options`` go to the target (``opset``, ``fp16``, ``tolerance``...) and to
        :meth:`export_spec`.

        Returns:
            the target's report (paths written, the verification's maximum differences).

        Raises:
            ExportError: the format cannot hold this model, or the export failed verification.
        """
        from convai_core.registry import get_registries

        targets = get_registries().export_targets
        if format not in targets:
            known = ", ".join(entry.key for entry in targets) or "none: install convai-export"
            raise ExportError(f"unknown export format {format!r}; known formats: {known}")
        target = targets.load(format)
        return target(self, output, **options)

    # ------------------------------------------------------------------ data
    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader | None:
        """Build the loader of ``split`` ("train", "validation", "test") from its config section."""
        raise NotImplementedError(f"{type(self).__name__} does not build data loaders")

    def _loader(self, split: str) -> DataLoader | list[Any]:
        section = self.DATA_SECTIONS[split]
        data_cfg = self.cfg.get(section)
        if data_cfg is None:
            return []
        loader = self.build_dataloader(data_cfg, split)
        return [] if loader is None else loader

    def train_dataloader(self) -> Any:
        loader = self._loader("train")
        if not loader:
            raise ConfigError(
                f"{type(self).__name__}: model.train_ds is missing; add a train_ds section to "
                f"the model config to train it."
            )
        return loader

    def val_dataloader(self) -> Any:
        return self._loader("validation")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    # ------------------------------------------------------------------ optimization
    def configure_optimizers(self) -> Any:
        optim_cfg = parse_optim_config(self.cfg.get("optim"))
        optimizer = build_optimizer(self.named_parameters(), optim_cfg)
        total: int | None = None
        if self._trainer is not None:
            try:
                est = self.trainer.estimated_stepping_batches
                total = int(est) if est != float("inf") else None
            except Exception:  # no loaders attached yet
                total = None
        scheduler = build_scheduler(optimizer, optim_cfg, total)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    # ------------------------------------------------------------------ artifacts
    def register_artifact(self, config_key: str, path: str | os.PathLike[str]) -> str:
        """Attach the file at ``path`` to the model under dotted ``config_key``.

        :meth:`save_to` copies the file into the archive and rewrites ``config_key`` to point
        into it; :meth:`restore_from` points it at the extracted copy. Returns the path to use
        now (as a string).
        """
        resolved = Path(path).expanduser()
        if not resolved.is_file():
            raise ConfigError(
                f"model.{config_key}: artifact file {resolved} does not exist; fix the path in "
                f"the config."
            )
        self._artifacts[config_key] = resolved.resolve()
        OmegaConf.update(self.cfg, config_key, str(resolved.resolve()), force_add=True)
        return str(resolved.resolve())

    @property
    def artifacts(self) -> dict[str, Path]:
        return dict(self._artifacts)

    # ------------------------------------------------------------------ archive
    @classmethod
    def registry_entry(cls, key: str | None = None) -> Entry | None:
        """The registry entry of this class (by ``key`` when given), if it is registered."""
        from convai_core.registry import get_registries

        models = get_registries().models
        if key is not None and key in models:
            return models.get(key)
        target = f"{cls.__module__}:{cls.__qualname__}"
        for entry in models:
            if entry.target == target:
                return entry
        return None

    def _distribution(self) -> str:
        entry = self.registry_entry(self.cfg.get("name"))
        if entry is not None:
            return entry.provenance.distribution
        top = type(self).__module__.split(".", 1)[0]
        dists = packages_distributions().get(top, [])
        return dists[0] if dists else top

    def save_to(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to a ``.convai`` archive (atomically) and return its path.

        Missing parent folders are created.
        """
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = OmegaConf.to_container(self.cfg, resolve=True)  # type: ignore[assignment]
        members: dict[str, Path] = {}
        for config_key, source in self._artifacts.items():
            name = _unique_name(source.name, members)
            members[name] = source
            _set_dotted(config, config_key, ARTIFACT_PREFIX + name)
        name = self.cfg.get("name") or f"{type(self).__module__}:{type(self).__qualname__}"
        return archive.write_archive(
            path,
            config=config,
            state_dict=self.state_dict(),
            model=str(name),
            distribution=self._distribution(),
            artifacts=members,
            extra_manifest={"class": f"{type(self).__module__}:{type(self).__qualname__}"},
        )

    @classmethod
    def restore_from(
        cls,
        path: str | os.PathLike[str],
        map_location: str | torch.device | None = None,
        strict: bool = True,
        override_config: Mapping[str, Any] | None = None,
        trainer: pl.Trainer | None = None,
        extract_dir: str | os.PathLike[str] | None = None,
    ) -> ModelBase:
        """Load a model from a ``.convai`` archive.

        The archive is verified (checksums, safe member names) and never executes code: the
        config is YAML, the weights safetensors. The class comes from the registry key in the
        archive's manifest; calling this on a subclass also checks that the archive holds that
        class (or a subclass of it).
        """
        contents = archive.read_archive(
            path, extract_dir=extract_dir, map_location=str(map_location or "cpu")
        )
        model_key = contents.manifest.get("model", "")
        model_cls = _class_for(model_key, contents.manifest, path)
        if not issubclass(model_cls, cls):
            raise ArchiveError(
                f"{path} holds a {model_cls.__name__} ({model_key}), not a {cls.__name__}; "
                f"restore it with {model_cls.__name__}.restore_from or ModelBase.restore_from."
            )
        config = contents.config
        _rewrite_artifacts(config, contents)
        cfg = OmegaConf.create(config)
        if override_config:
            cfg = OmegaConf.merge(cfg, OmegaConf.create(dict(override_config)))  # type: ignore[assignment]
        model = model_cls(cfg=cfg, trainer=trainer)
        result = model.load_state_dict(contents.state_dict, strict=strict)
        if not strict and (result.missing_keys or result.unexpected_keys):
            log.warning(
                "restore_from(%s): missing keys %s, unexpected keys %s",
                path,
                result.missing_keys,
                result.unexpected_keys,
            )
        if map_location is not None:
            model = model.to(map_location)
        model.eval()
        return model

    @classmethod
    def list_available_models(cls) -> list[Entry]:
        """Pretrained catalog entries whose archives hold this class (all entries on ModelBase)."""
        from convai_core.registry import get_registries

        regs = get_registries()
        result = []
        for entry in regs.pretrained:
            key = entry.metadata.get("model") or ""
            if cls is ModelBase:
                result.append(entry)
                continue
            try:
                model_cls = regs.models.load(key)
            except (UnknownKeyError, ImportError):
                continue
            if isinstance(model_cls, type) and issubclass(model_cls, cls):
                result.append(entry)
        return result

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        map_location: str | torch.device | None = None,
        strict: bool = True,
        override_config: Mapping[str, Any] | None = None,
    ) -> ModelBase:
        """Restore a pretrained model by catalog name (or a ``.convai`` path), offline from cache."""
        from convai_core.pretrained import resolve_pretrained

        local = resolve_pretrained(name)
        return cls.restore_from(
            local, map_location=map_location, strict=strict, override_config=override_config
        )

    # ------------------------------------------------------------------ transfer learning
    def warm_start_from(
        self,
        source: str | os.PathLike[str] | ModelBase | Mapping[str, torch.Tensor],
        prefixes: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
    ) -> dict[str, list[str]]:
        """Copy matching weights from another model or ``.convai`` archive into this one.

        A weight is copied when its name starts with one of ``prefixes`` (all when None), is not
        excluded, exists here and has the same shape. Returns ``{"loaded": [...], "skipped":
        [...]}`` (skipped: in the source's selection but missing here or of another shape).
        """
        if isinstance(source, ModelBase):
            state = source.state_dict()
        elif isinstance(source, Mapping):
            state = dict(source)
        else:
            state = archive.read_archive(source).state_dict
        prefixes = tuple(prefixes) if prefixes is not None else ("",)
        exclude = tuple(exclude)
        own = self.state_dict()
        loaded, skipped = [], []
        update: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            if not key.startswith(prefixes) or (exclude and key.startswith(exclude)):
                continue
            if key in own and own[key].shape == tensor.shape:
                update[key] = tensor
                loaded.append(key)
            else:
                skipped.append(key)
        if not loaded:
            raise ConfigError(
                f"warm_start_from: no weights matched prefixes {list(prefixes)}; check the prefix "
                f"names (this model's top-level modules: "
                f"{sorted({k.split('.', 1)[0] for k in own})})."
            )
        self.load_state_dict(update, strict=False)
        log.info("warm start: loaded %d tensors, skipped %d", len(loaded), len(skipped))
        return {"loaded": loaded, "skipped": skipped}


def _unique_name(name: str, taken: Mapping[str, Any]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        stem, dot, suffix = name.partition(".")
        candidate = f"{stem}_{n}{dot}{suffix}"
        n += 1
    return candidate


def _set_dotted(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def archive_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model config stored in a ``.convai`` archive, its artifact references pointing at
    extracted copies (in a fresh temporary folder that outlives the call, as
    :meth:`ModelBase.restore_from` leaves it), so that a new model can be built from it.

    Raises:
        ArchiveError: the archive is missing, damaged or unsafe.
    """
    contents = archive.read_archive(path)
    config = dict(contents.config)
    _rewrite_artifacts(config, contents)
    return config


def _rewrite_artifacts(node: Any, contents: archive.ArchiveContents) -> None:
    """Point every ``archive:<name>`` value at the extracted artifact file."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in list(items):
        if isinstance(value, str) and value.startswith(ARTIFACT_PREFIX):
            node[key] = str(contents.artifact_path(value[len(ARTIFACT_PREFIX) :]))
        elif isinstance(value, dict | list):
            _rewrite_artifacts(value, contents)


def _class_for(model_key: str, manifest: Mapping[str, Any], path: Any) -> type[ModelBase]:
    from convai_core.registry import get_registries

    models = get_registries().models
    if model_key in models:
        obj = models.load(model_key)
        if isinstance(obj, type) and issubclass(obj, ModelBase):
            return obj
        raise ArchiveError(f"registry key {model_key!r} does not name a ModelBase subclass")
    dist = manifest.get("distribution") or "the package that provides it"
    version = (manifest.get("versions") or {}).get(dist, "")
    pin = f"=={version}" if version else ""
    raise ArchiveError(
        f"{path} holds model {model_key!r}, which no installed package provides. It was saved "
        f"with {dist} {version}: install it (`pip install {dist}{pin}`) and try again."
    )
