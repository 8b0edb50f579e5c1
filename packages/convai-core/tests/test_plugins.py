"""Plugin discovery, guarded loading, environment switches and the registries."""

from __future__ import annotations

import inspect
import warnings

import pluggy
import pytest

from convai_core import hookspecs, plugins
from convai_core.errors import DuplicateKeyError, PluginLoadError, UnknownKeyError
from convai_core.registry import KINDS, PretrainedRegistry, Provenance, Registry

GOOD = """
from convai_core.hookspecs import hookimpl

@hookimpl
def convai_register_models(registry):
    registry.add("fakeplug/model", "fakeplug_good:Model", description="a fake model")

@hookimpl
def convai_config_search_path():
    return ["file:///nonexistent/fakeplug"]

class Model:
    pass
"""


def _spec_names() -> list[str]:
    return sorted(
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("convai_")
    )


# ---------------------------------------------------------------- the hook specifications
def test_every_hook_is_documented() -> None:
    for name in _spec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 40, f"hook {name} has no real docstring in hookspecs.py"


def test_every_register_hook_has_a_registry_kind() -> None:
    register_hooks = {
        n[len("convai_register_") :] for n in _spec_names() if n.startswith("convai_register_")
    }
    assert register_hooks == set(KINDS)


# Hooks that are not "convai_register_<kind>" need a test of their own; list it here.
SPECIAL_HOOK_TESTS = {
    "convai_config_search_path": "test_config_search_path_hook",
    "convai_resolve_pretrained": "test_resolve_pretrained_hook_firstresult",
}


def test_every_hook_is_tested() -> None:
    """Fails when a hook is added to hookspecs.py without a test."""
    for name in _spec_names():
        if name.startswith("convai_register_"):
            continue  # covered by test_register_hook (parametrized over KINDS)
        assert name in SPECIAL_HOOK_TESTS, f"hook {name} has no test: add one to SPECIAL_HOOK_TESTS"
        test = globals().get(SPECIAL_HOOK_TESTS[name])
        assert callable(test), f"{SPECIAL_HOOK_TESTS[name]} is missing"


@pytest.mark.parametrize("kind", KINDS)
def test_register_hook(kind: str, fake_dists) -> None:
    extra = ', sha256="' + "ab" * 32 + '"' if kind == "pretrained" else ""
    fake_dists(
        "fakeplug-kind",
        f"""
        from convai_core.hookspecs import hookimpl

        @hookimpl
        def convai_register_{kind}(registry):
            registry.add("fakeplug/{kind}", "fakeplug_kind:thing", description="d"{extra})

        thing = object()
    """,
        version="2.5",
    )
    loaded = plugins.load_plugins(reload=True)
    entry = loaded.registries[kind].get(f"fakeplug/{kind}")
    assert entry.provenance.distribution == "fakeplug-kind"
    assert entry.provenance.version == "2.5"
    if kind != "pretrained":
        import fakeplug_kind

        assert entry.load() is fakeplug_kind.thing


def test_config_search_path_hook(fake_dists) -> None:
    fake_dists("fakeplug-good", GOOD)
    paths = plugins.load_plugins(reload=True).registries.config_search_path
    assert paths[0] == "pkg://convai_core.conf"
    assert "file:///nonexistent/fakeplug" in paths


def test_resolve_pretrained_hook_firstresult(fake_dists, tmp_path) -> None:
    target = tmp_path / "m.convai"
    target.write_bytes(b"x")
    fake_dists(
        "fakeplug-resolver",
        f"""
        from convai_core.hookspecs import hookimpl

        @hookimpl
        def convai_resolve_pretrained(name, cache_dir):
            return {str(target)!r} if name == "private/model" else None
    """,
    )
    from convai_core.pretrained import resolve_pretrained

    plugins.load_plugins(reload=True)
    assert resolve_pretrained("private/model") == target
    with pytest.raises(Exception, match=r"No pretrained model named .other."):
        resolve_pretrained("other")


# ---------------------------------------------------------------- guarded loading
def test_builtin_plugins_load_through_entry_points() -> None:
    loaded = plugins.load_plugins(reload=True)
    core = [i for i in loaded.plugins if i.distribution == "convai-core"]
    assert core and core[0].status == "loaded"
    assert "convai_register_models" in core[0].hooks
    assert (
        loaded.registries.models.get("core/mlp_classifier").provenance.distribution == "convai-core"
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import module_that_does_not_exist\n", "ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "boom at import"),
        (
            "from convai_core.hookspecs import hookimpl\n\n@hookimpl\n"
            "def convai_register_modelz(registry):\n    pass\n",
            "does not exist",
        ),
        (
            "from convai_core.hookspecs import hookimpl\n\n@hookimpl\n"
            "def convai_register_models(registry, extra):\n    pass\n",
            "invalid hook",
        ),
        (
            "from convai_core.hookspecs import hookimpl\n\n@hookimpl\n"
            "def convai_register_models(registry):\n    raise ValueError('bad register')\n",
            "bad register",
        ),
    ],
    ids=["import-error", "runtime-error", "misspelled-hook", "bad-signature", "raises-in-hook"],
)
def test_broken_plugin_is_skipped_with_a_warning(source, reason, fake_dists, monkeypatch) -> None:
    fake_dists("fakeplug-good", GOOD)
    fake_dists("fakeplug-broken", source, version="0.3")
    with pytest.warns(plugins.PluginWarning) as record:
        loaded = plugins.load_plugins(reload=True)
    messages = " ".join(str(w.message) for w in record)
    assert "fakeplug-broken 0.3" in messages and reason in messages
    assert "fakeplug/model" in loaded.registries.models
    assert "core/mlp_classifier" in loaded.registries.models
    status = {i.distribution: i.status for i in loaded.plugins}
    assert status["fakeplug-broken"] == "failed"
    monkeypatch.setenv("CONVAI_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"fakeplug-broken 0\.3"):
        plugins.load_plugins(reload=True)


def test_duplicate_key_names_both_distributions(fake_dists, monkeypatch) -> None:
    fake_dists(
        "fakeplug-clash",
        """
        from convai_core.hookspecs import hookimpl

        @hookimpl
        def convai_register_models(registry):
            registry.add("core/mlp_classifier", "fakeplug_clash:Other")
    """,
    )
    with pytest.warns(UserWarning, match=r"convai-core .*fakeplug-clash"):
        loaded = plugins.load_plugins(reload=True)
    assert (
        loaded.registries.models.get("core/mlp_classifier").provenance.distribution == "convai-core"
    )
    monkeypatch.setenv("CONVAI_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"convai-core .*fakeplug-clash"):
        plugins.load_plugins(reload=True)


# ---------------------------------------------------------------- environment switches
def _status(name: str) -> str:
    return {i.distribution: i.status for i in plugins.load_plugins(reload=True).plugins}[name]


def test_block_list(fake_dists, monkeypatch) -> None:
    fake_dists("fakeplug-good", GOOD)
    monkeypatch.setenv("CONVAI_PLUGINS_BLOCK", "fakeplug-good")
    assert _status("fakeplug-good") == "blocked"
    assert "fakeplug/model" not in plugins.load_plugins().registries.models


def test_allow_list_keeps_core(fake_dists, monkeypatch) -> None:
    fake_dists("fakeplug-good", GOOD)
    monkeypatch.setenv("CONVAI_PLUGINS_ALLOW", "someone-else")
    assert _status("fakeplug-good") == "blocked"
    assert _status("convai-core") == "loaded"
    monkeypatch.setenv("CONVAI_PLUGINS_ALLOW", "fakeplug_good")  # entry-point name works too
    assert _status("fakeplug-good") == "loaded"


def test_disable_autoload(fake_dists, monkeypatch) -> None:
    fake_dists("fakeplug-good", GOOD)
    monkeypatch.setenv("CONVAI_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert _status("fakeplug-good") == "blocked"
    assert _status("convai-core") == "loaded"
    monkeypatch.setenv("CONVAI_PLUGINS", "fakeplug-good")
    assert _status("fakeplug-good") == "loaded"


def test_trace_hook_calls(fake_dists, monkeypatch, capsys) -> None:
    fake_dists("fakeplug-good", GOOD)
    monkeypatch.setenv("CONVAI_TRACE_HOOKS", "1")
    plugins.load_plugins(reload=True)
    err = capsys.readouterr().err
    assert "[convai hooks]" in err and "convai_register_models" in err


# ---------------------------------------------------------------- the registry object
def test_registry_rejects_bad_targets_and_suggests_keys() -> None:
    reg = Registry("models")
    reg._set_provenance(Provenance("p", "dist-a", "1"))
    with pytest.raises(ValueError, match="module:attr"):
        reg.add("x/y", "not a target")
    reg.add("asr/quartznet", "pkg.mod:QuartzNet")
    with pytest.raises(UnknownKeyError) as info:
        reg.get("asr/quartznett")
    message = str(info.value)
    assert "'asr/quartznet'" in message and "pip install convai-asr" in message
    reg._set_provenance(Provenance("q", "dist-b", "2"))
    with pytest.raises(DuplicateKeyError, match=r"dist-a 1 .*dist-b 2"):
        reg.add("asr/quartznet", "other.mod:Q")


def test_lenient_registry_keeps_first_and_warns() -> None:
    reg = Registry("models", strict=False)
    reg.add("k", "a.b:C")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.add("k", "d.e:F")
    assert caught and reg.get("k").target == "a.b:C"


def test_pretrained_registry_checks_checksum_format() -> None:
    reg = PretrainedRegistry("pretrained")
    with pytest.raises(ValueError, match=r"64 hex"):
        reg.add("m", location="/x.convai", sha256="abc")
    reg.add("m", location="https://example.invalid/m.convai", sha256="A" * 64, model="core/x")
    entry = reg.get("m")
    assert entry.target.startswith("https://") and entry.metadata["sha256"] == "a" * 64


def test_entry_load_names_the_distribution_on_failure() -> None:
    reg = Registry("models")
    reg._set_provenance(Provenance("p", "dist-z", "9"))
    reg.add("k", "no_such_module_xyz:Thing")
    with pytest.raises(ImportError, match="dist-z"):
        reg.get("k").load()


def test_pluggy_project_name() -> None:
    manager, _ = plugins.build_plugin_manager()
    assert isinstance(manager, pluggy.PluginManager)
    assert manager.project_name == "convai"
