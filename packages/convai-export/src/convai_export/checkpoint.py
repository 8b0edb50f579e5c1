"""The ``checkpoint`` format: a folder of plain files, loadable without running any of its code.

::

    checkpoint.json     format version, model key, class, package versions, dtype
    config.yaml         the model config (artifact paths as ``archive:<file>``)
    model.safetensors   the weights
    artifacts/<file>    files the config points at (a tokenizer model...)

:func:`load_checkpoint` rebuilds the model from the registry key, as ``.convai`` archives do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from convai_core.errors import ExportError

FORMAT_VERSION = 1


def write_checkpoint(model: Any, folder: Path, *, fp16: bool = False) -> list[str]:
    """Write ``model`` into the (existing, empty) ``folder``; returns the file names written."""
    import yaml
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    from convai_core.models.base import ARTIFACT_PREFIX, _set_dotted, _unique_name

    config: dict[str, Any] = OmegaConf.to_container(model.cfg, resolve=True)  # type: ignore[assignment]
    written = ["checkpoint.json", "config.yaml", "model.safetensors"]
    members: dict[str, Path] = {}
    for config_key, source in model.artifacts.items():
        name = _unique_name(source.name, members)
        members[name] = source
        _set_dotted(config, config_key, ARTIFACT_PREFIX + name)
    if members:
        (folder / "artifacts").mkdir()
    for name, source in members.items():
        shutil.copyfile(source, folder / "artifacts" / name)
        written.append(f"artifacts/{name}")
    state = {
        k: (v.half() if fp16 and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    versions = {}
    from importlib.metadata import PackageNotFoundError, version

    dist = model._distribution()
    for name in ("convai-core", dist, "torch"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    meta = {
        "format": "convai-checkpoint",
        "format_version": FORMAT_VERSION,
        "model": str(model.cfg.get("name", "")),
        "class": f"{type(model).__module__}:{type(model).__qualname__}",
        "distribution": dist,
        "versions": versions,
        "dtype": "float16" if fp16 else str(next(iter(state.values())).dtype).replace("torch.", ""),
    }
    (folder / "checkpoint.json").write_text(json.dumps(meta, indent=2) + "\n")
    return written


def load_checkpoint(folder: str | Path, map_location: str = "cpu") -> Any:
    """Rebuild a model from a checkpoint folder (weights cast to float32 if stored as fp16).

    Raises:
        ExportError: a file is missing or the folder is not a convai checkpoint.
    """
    import yaml
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from convai_core.models.base import _class_for, _rewrite_artifacts

    folder = Path(folder)
    meta_path = folder / "checkpoint.json"
    if not meta_path.is_file():
        raise ExportError(f"{folder} is not a convai checkpoint: checkpoint.json is missing")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != "convai-checkpoint" or meta.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{meta_path}: format {meta.get('format')!r} version {meta.get('format_version')!r} "
            f"is not convai-checkpoint {FORMAT_VERSION}"
        )
    for name in ("config.yaml", "model.safetensors"):
        if not (folder / name).is_file():
            raise ExportError(f"{folder}: {name} is missing; re-export the checkpoint")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    root = folder  # a Path, for the class below

    class _Artifacts:  # what _rewrite_artifacts asks of an archive, for this folder
        @staticmethod
        def artifact_path(name: str) -> Path:
            path = root / "artifacts" / name
            if not path.is_file():
                raise ExportError(f"{root}: artifact {name} is missing; re-export the checkpoint")
            return path

    _rewrite_artifacts(config, _Artifacts())  # type: ignore[arg-type]
    model_cls = _class_for(meta["model"], meta, folder)
    model = model_cls(cfg=OmegaConf.create(config))
    state = load_file(str(folder / "model.safetensors"), device=map_location)
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()
