"""ModelBase: archives (save/restore, artifacts, unknown models), warm start, pretrained catalog."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from convai_core import plugins
from convai_core.errors import ArchiveError, ConfigError, PretrainedError
from convai_core.models import ModelBase
from convai_core.models.mlp_classifier import MLPClassifier
from convai_core.registry import Entry, Provenance
from convai_core.train import compose_config


def _model(**overrides) -> MLPClassifier:
    cfg = compose_config(["model=core/mlp_classifier"]).model
    OmegaConf.set_struct(cfg, False)
    cfg = OmegaConf.merge(cfg, OmegaConf.create(overrides))
    torch.manual_seed(0)
    return MLPClassifier(cfg)


def test_save_restore_gives_identical_outputs(tmp_path: Path) -> None:
    model = _model().eval()
    path = model.save_to(tmp_path / "m.convai")
    restored = ModelBase.restore_from(path)
    assert type(restored) is MLPClassifier
    x = torch.randn(5, 16)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
    assert OmegaConf.to_container(restored.cfg) == OmegaConf.to_container(model.cfg, resolve=True)
    # restoring through the subclass works; through an unrelated subclass it is refused
    assert isinstance(MLPClassifier.restore_from(path), MLPClassifier)

    class Other(ModelBase):
        pass

    with pytest.raises(ArchiveError, match="not a Other"):
        Other.restore_from(path)


def test_artifacts_travel_inside_the_archive(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\nc\n")
    model = _model(tokenizer={"vocab": str(vocab)})
    model.register_artifact("tokenizer.vocab", vocab)
    path = model.save_to(tmp_path / "m.convai")
    vocab.unlink()  # the archive must not depend on the original file
    restored = ModelBase.restore_from(path, extract_dir=tmp_path / "x")
    restored_vocab = Path(restored.cfg.tokenizer.vocab)
    assert restored_vocab.read_text() == "a\nb\nc\n"
    assert restored_vocab.parent == tmp_path / "x"
    with pytest.raises(ConfigError, match="does not exist"):
        model.register_artifact("tokenizer.vocab", tmp_path / "missing.txt")


def test_unknown_model_key_names_the_package_to_install(tmp_path: Path) -> None:
    from convai_core import archive

    model = _model()
    path = archive.write_archive(
        tmp_path / "asr.convai",
        config={**OmegaConf.to_container(model.cfg), "name": "asr/quartznet"},
        state_dict=model.state_dict(),
        model="asr/quartznet_missing",
        distribution="convai-asr-future",
    )
    with pytest.raises(ArchiveError, match=r"pip install convai-asr-future"):
        ModelBase.restore_from(path)


def test_warm_start_copies_matching_prefixes(tmp_path: Path) -> None:
    source = _model()
    path = source.save_to(tmp_path / "src.convai")
    torch.manual_seed(1)
    target = MLPClassifier(OmegaConf.merge(source.cfg, {"num_classes": 7}))
    report = target.warm_start_from(path, prefixes=["encoder"])
    assert report["loaded"] and all(k.startswith("encoder") for k in report["loaded"])
    for key, value in source.state_dict().items():
        if key.startswith("encoder"):
            assert torch.equal(target.state_dict()[key], value)
    assert target.head.weight.shape[0] == 7  # the new head is untouched
    report = target.warm_start_from(source)  # all prefixes: the 4-class head is skipped
    assert "head.weight" in report["skipped"]
    with pytest.raises(ConfigError, match="no weights matched"):
        target.warm_start_from(source, prefixes=["decoder"])


def test_optimizer_and_schedule_come_from_the_config() -> None:
    model = _model(optim={"name": "sgd", "lr": 0.1, "momentum": 0.9, "sched": {"name": "none"}})
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    model = _model(optim={"name": "adamw", "lr": 0.1, "sched": {"name": "noam", "warmup_steps": 4}})
    result = model.configure_optimizers()
    assert isinstance(result["optimizer"], torch.optim.AdamW)
    with pytest.raises(ConfigError, match=r"model\.optim\.lrr"):
        _model(optim={"lrr": 0.1}).configure_optimizers()


def test_typecheck_mode_checks_every_call_and_export_axes_come_from_ports() -> None:
    from convai_core.errors import NeuralTypeError
    from convai_core.types import dynamic_axes, export_input_names, typecheck

    model = _model()
    wrong = torch.randn(2, 3, 16)  # an extra axis: Linear and log_softmax accept it silently
    assert model(wrong).shape == (2, 3, 4)
    with typecheck(), pytest.raises(NeuralTypeError, match=r"MLPClassifier.*features"):
        model(wrong)
    with typecheck():
        assert model(torch.randn(2, 16)).shape == (2, 4)
    assert export_input_names(model.input_ports) == ["features"]
    assert dynamic_axes(model.input_ports) == {"features": {0: "batch"}}


# ---------------------------------------------------------------- pretrained catalog
def _catalog(location: str, sha: str):
    """Install a one-entry pretrained catalog through an in-process plugin."""

    class Plugin:
        @staticmethod
        @plugins.hookspecs.hookimpl
        def convai_register_pretrained(registry):
            registry.add(
                "core/demo_classifier",
                location=location,
                sha256=sha,
                model="core/mlp_classifier",
                description="test entry",
            )

    manager, infos = plugins.build_plugin_manager(extra_plugins=[("test-catalog", Plugin)])
    registries = plugins.fill_registries(manager, infos)
    plugins._loaded = plugins.LoadedPlugins(manager, registries, infos)


@pytest.fixture
def archive_file(tmp_path: Path) -> tuple[Path, str, MLPClassifier]:
    model = _model().eval()
    path = model.save_to(tmp_path / "pub" / "demo.convai")
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), model


@pytest.fixture
def restore_plugins():
    yield
    plugins.load_plugins(reload=True)


def test_from_pretrained_local_file(archive_file, restore_plugins) -> None:
    path, sha, model = archive_file
    _catalog(str(path), sha)
    restored = MLPClassifier.from_pretrained("core/demo_classifier")
    x = torch.randn(3, 16)
    assert torch.equal(restored(x), model(x))
    assert [e.key for e in MLPClassifier.list_available_models()] == ["core/demo_classifier"]
    _catalog(str(path), "0" * 64)
    with pytest.raises(PretrainedError, match="Checksum mismatch"):
        MLPClassifier.from_pretrained("core/demo_classifier")
    with pytest.raises(PretrainedError, match="Known names: core/demo_classifier"):
        MLPClassifier.from_pretrained("core/nope")


def test_from_pretrained_downloads_to_cache_then_works_offline(
    archive_file, tmp_path, monkeypatch, restore_plugins
) -> None:
    path, sha, model = archive_file
    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path / "cache"))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(path.parent), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/demo.convai"
    try:
        _catalog(url, sha)
        first = MLPClassifier.from_pretrained("core/demo_classifier")
    finally:
        server.shutdown()
        server.server_close()
    cached = list((tmp_path / "cache").rglob("*.convai"))
    assert len(cached) == 1
    # the server is gone: the cache answers
    second = MLPClassifier.from_pretrained("core/demo_classifier")
    x = torch.randn(2, 16)
    assert torch.equal(first(x), second(x)) and torch.equal(first(x), model(x))
    # a damaged cache entry offline: a clear error naming where to put the file
    cached[0].write_bytes(b"damaged")
    with pytest.raises(PretrainedError, match=r"not in the cache .*downloading it from"):
        MLPClassifier.from_pretrained("core/demo_classifier")
    assert not cached[0].exists()


def test_list_available_models_on_base_lists_every_entry(archive_file, restore_plugins) -> None:
    path, sha, _ = archive_file
    _catalog(str(path), sha)
    entries = ModelBase.list_available_models()
    assert isinstance(entries[0], Entry)
    assert entries[0].provenance == Provenance("test-catalog", "<in-process>", "")
