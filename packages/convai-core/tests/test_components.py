"""Components from config nodes: registry lookup, signature checks, lists, legacy ``type:`` keys."""

from __future__ import annotations

import sys
import types

import pytest

from convai_core.components import build, build_list, check_arguments, rename_legacy_type
from convai_core.errors import ConfigError
from convai_core.registry import Registries


class Widget:
    """A component with a required, a defaulted and a model-supplied argument."""

    def __init__(self, size: int, feat_in: int, *, scale: float = 1.0) -> None:
        self.size, self.feat_in, self.scale = size, feat_in, scale


def make_widget(size: int, scale: float = 1.0) -> Widget:
    return Widget(size, feat_in=0, scale=scale)


def refuses(size: int) -> Widget:
    raise ValueError(f"size {size} is too large")


def open_kwargs(**settings: object) -> dict[str, object]:
    return dict(settings)


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch) -> Registries:
    # pytest's importlib mode gives this file no importable name: publish its parts as a module
    module = types.ModuleType("convai_test_components")
    for obj in (Widget, make_widget, refuses, open_kwargs):
        setattr(module, obj.__name__, obj)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    regs = Registries()
    regs.modules.add("test/widget", "convai_test_components:Widget")
    regs.modules.add("test/widget_fn", "convai_test_components:make_widget")
    regs.modules.add("test/refuses", "convai_test_components:refuses")
    regs.modules.add("test/open", "convai_test_components:open_kwargs")
    return regs


def test_build_checks_the_node_and_passes_the_context(registries: Registries) -> None:
    widget = build(
        "modules",
        {"name": "test/widget", "size": 3, "scale": 2.0},
        path="model.encoder",
        context={"feat_in": 80},
        registries=registries,
    )
    assert (widget.size, widget.feat_in, widget.scale) == (3, 80, 2.0)
    # context values the target does not take are not passed
    plain = build(
        "modules",
        {"name": "test/widget_fn", "size": 4},
        path="p",
        context={"feat_in": 80},
        registries=registries,
    )
    assert (plain.size, plain.feat_in) == (4, 0)
    # the short form: the key alone, for components without settings
    assert build("modules", "test/open", path="p", registries=registries) == {}
    # a target that takes **kwargs gets every key
    assert build("modules", {"name": "test/open", "x": 1}, path="p", registries=registries) == {
        "x": 1
    }


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"name": "test/widgte", "size": 1}, r"model.encoder.name='test/widgte' is not a registered "
         r"modules key. Did you mean 'test/widget'\?"),
        ({"size": 1}, r"model.encoder.name is missing"),
        ({"name": "test/widget", "sise": 1}, r"Unknown config key model.encoder.sise for "
         r"test/widget. Did you mean 'size'\?"),
        ({"name": "test/widget"}, r"model.encoder: test/widget needs 'size'; set model.encoder.size"),
        ({"name": "test/widget", "size": 1, "feat_in": 3}, r"model.encoder.feat_in: test/widget "
         r"gets 'feat_in' from the model"),
        ({"name": "test/refuses", "size": 9}, r"model.encoder \(test/refuses\): size 9 is too large"),
        ([1, 2], r"model.encoder must be a mapping"),
    ],
)
def test_build_errors_name_the_path_and_the_closest_key(
    registries: Registries, node: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build("modules", node, path="model.encoder", context={"feat_in": 80}, registries=registries)


def test_sibling_keys_are_suggested_but_not_passed() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'batch_size'\?"):
        check_arguments(
            make_widget, {"size": 1, "batch_sise": 2}, path="d", component="w",
            sibling_keys=("batch_size",),
        )


def test_build_list_with_probabilities(registries: Registries) -> None:
    items = build_list(
        "modules",
        [{"name": "test/widget_fn", "size": 1}, {"name": "test/widget_fn", "size": 2, "prob": 0.25}],
        path="model.augmentations",
        registries=registries,
    )
    assert [(i.key, i.component.size, i.probability) for i in items] == [
        ("test/widget_fn", 1, 1.0),
        ("test/widget_fn", 2, 0.25),
    ]
    assert build_list("modules", None, path="x", registries=registries) == []
    with pytest.raises(ConfigError, match=r"model.augmentations\[1\].prob=1.5 must be a number"):
        build_list(
            "modules",
            [{"name": "test/widget_fn", "size": 1}, {"name": "test/widget_fn", "size": 1, "prob": 1.5}],
            path="model.augmentations",
            registries=registries,
        )
    with pytest.raises(ConfigError, match=r"model.augmentations\[0\].name='nope'"):
        build_list("modules", [{"name": "nope"}], path="model.augmentations", registries=registries)
    with pytest.raises(ConfigError, match=r"model.augmentations must be a list"):
        build_list("modules", {"name": "x"}, path="model.augmentations", registries=registries)


def test_legacy_type_keys_become_names_with_a_warning() -> None:
    names = {"conformer": "asr/conformer_encoder"}
    with pytest.warns(FutureWarning, match=r"model.encoder.name='asr/conformer_encoder'"):
        node = rename_legacy_type(
            {"type": "conformer", "d_model": 4}, path="model.encoder", names=names, removed_in="x 0.3"
        )
    assert node == {"name": "asr/conformer_encoder", "d_model": 4}
    assert rename_legacy_type({"name": "a/b"}, path="p", names=names, removed_in="x") == {"name": "a/b"}
    with pytest.raises(ConfigError, match=r"model.encoder.type='conformr' is not known. Did you mean"):
        rename_legacy_type({"type": "conformr"}, path="model.encoder", names=names, removed_in="x")
