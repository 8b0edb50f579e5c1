"""The fast-path switch: CPU eager only, never with autograd for inference-only paths, never in a
captured graph, never under the reference switch (environment variable or context manager)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from convai_core.fast_paths import (
    REFERENCE_PATHS_ENV,
    cpu_fast_path_applies,
    graph_capture,
    reference_paths,
    reference_paths_forced,
)


@pytest.fixture(autouse=True)
def _no_reference_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFERENCE_PATHS_ENV, raising=False)


def _answers(x: torch.Tensor) -> tuple[bool, bool]:
    return cpu_fast_path_applies(x, inference=True), cpu_fast_path_applies(x, inference=False)


def test_cpu_eager() -> None:
    x = torch.zeros(3)
    with torch.no_grad():
        assert _answers(x) == (True, True)
    with torch.inference_mode():
        assert _answers(torch.zeros(3)) == (True, True)
    with torch.enable_grad():  # autograd: only the paths that also serve training
        assert _answers(x) == (False, True)
    assert not graph_capture()


def test_other_devices_never() -> None:
    with torch.no_grad():
        assert _answers(torch.zeros(3, device="meta")) == (False, False)
        # only the device is read: a CUDA tensor's device, without needing CUDA here
        cuda_like = SimpleNamespace(device=torch.device("cuda", 0))
        assert _answers(cuda_like) == (False, False)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_environment_variable_forces_reference(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(REFERENCE_PATHS_ENV, value)
    assert reference_paths_forced()
    with torch.no_grad():
        assert _answers(torch.zeros(3)) == (False, False)
    monkeypatch.setenv(REFERENCE_PATHS_ENV, "0")  # read at every call
    with torch.no_grad():
        assert _answers(torch.zeros(3)) == (True, True)


def test_unknown_environment_value_warns_and_keeps_fast_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REFERENCE_PATHS_ENV, "sometimes-unique-value")
    with pytest.warns(UserWarning, match=REFERENCE_PATHS_ENV):
        assert not reference_paths_forced()


def test_context_manager_nests_and_restores_after_errors() -> None:
    x = torch.zeros(3)
    with torch.no_grad():
        with reference_paths():
            assert _answers(x) == (False, False)
            with reference_paths():
                assert reference_paths_forced()
            assert _answers(x) == (False, False)
        assert _answers(x) == (True, True)
        with pytest.raises(RuntimeError, match="boom"), reference_paths():
            raise RuntimeError("boom")
        assert _answers(x) == (True, True)


def test_context_manager_is_local_to_its_thread() -> None:
    seen: list[bool] = []
    with reference_paths():
        thread = threading.Thread(target=lambda: seen.append(reference_paths_forced()))
        thread.start()
        thread.join()
    assert seen == [False]


def test_jit_trace_never() -> None:
    def probe(x: torch.Tensor) -> torch.Tensor:
        inference, training = _answers(x)
        captured = graph_capture()
        return x + (1.0 if inference or training else 0.0) + (10.0 if captured else 0.0)

    with torch.no_grad():
        traced = torch.jit.trace(probe, torch.zeros(2), check_trace=False)
    assert traced(torch.zeros(2)).tolist() == [10.0, 10.0]


def test_torch_compile_never() -> None:
    def probe(x: torch.Tensor) -> torch.Tensor:
        fast = cpu_fast_path_applies(x, inference=False)
        return x + (1.0 if fast else 0.0) + (10.0 if graph_capture() else 0.0)

    # fullgraph: the switch itself must not break the graph (dynamo folds it to a constant)
    compiled = torch.compile(probe, backend="eager", fullgraph=True)
    assert compiled(torch.zeros(2)).tolist() == [10.0, 10.0]
    assert probe(torch.zeros(2)).tolist() == [1.0, 1.0]


def test_torch_export_never() -> None:
    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            fast = cpu_fast_path_applies(x, inference=False)
            return x + (1.0 if fast else 0.0) + (10.0 if graph_capture() else 0.0)

    for strict in (True, False):
        program = torch.export.export(Probe(), (torch.zeros(2),), strict=strict)
        assert program.module()(torch.zeros(2)).tolist() == [10.0, 10.0], strict


def test_onnx_export_never(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert graph_capture()
    with torch.no_grad():
        assert _answers(torch.zeros(3)) == (False, False)
