"""Plotly figures and HTML pieces of the explorer page (no callbacks, no state)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import html

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from convai_asr.explorer.predictions import DiffSpan

__all__ = [
    "DIFF_STYLES",
    "diff_view",
    "empty_figure",
    "histogram_figure",
    "spectrogram_figure",
    "waveform_figure",
]

_MARGIN = {"l": 50, "r": 10, "t": 40, "b": 40}

# Colored spans of the word diff; the class names let tests and user CSS find them.
DIFF_STYLES: dict[str, dict[str, str]] = {
    "equal": {},
    "delete": {"backgroundColor": "#f8c6c6", "textDecoration": "line-through"},
    "insert": {"backgroundColor": "#c6efce"},
    "substitute-reference": {"backgroundColor": "#f8c6c6", "textDecoration": "line-through"},
    "substitute-hypothesis": {"backgroundColor": "#ffe699"},
}


def empty_figure(title: str = "") -> go.Figure:
    """A blank figure (before an utterance is selected, or when its audio cannot be read)."""
    figure = go.Figure()
    figure.update_layout(title=title, margin=_MARGIN, height=250, xaxis_visible=False)
    figure.update_yaxes(visible=False)
    return figure


def histogram_figure(
    counts: Sequence[int | float], edges: Sequence[float], *, title: str, x_title: str
) -> go.Figure:
    """Bars of ``counts`` over the bins bounded by ``edges`` (one more edge than counts)."""
    centers = [(lo + hi) / 2 for lo, hi in itertools.pairwise(edges)]
    widths = [hi - lo for lo, hi in itertools.pairwise(edges)]
    figure = go.Figure(go.Bar(x=centers, y=list(counts), width=widths, marker_color="#4c78a8"))
    figure.update_layout(
        title=title, margin=_MARGIN, height=300, xaxis_title=x_title, yaxis_title="utterances"
    )
    return figure


def waveform_figure(times: NDArray[np.float64], values: NDArray[np.float32]) -> go.Figure:
    """The waveform envelope (see :func:`convai_asr.explorer.audio.waveform_envelope`)."""
    figure = go.Figure(
        go.Scatter(x=times, y=values, mode="lines", line={"width": 1, "color": "#4c78a8"})
    )
    figure.update_layout(
        title="Waveform",
        margin=_MARGIN,
        height=250,
        xaxis_title="time, s",
        yaxis_title="amplitude",
        yaxis_range=[-1, 1],
    )
    return figure


def spectrogram_figure(
    times: NDArray[np.float64], frequencies: NDArray[np.float64], decibels: NDArray[np.float32]
) -> go.Figure:
    """A power spectrogram in dB. Shapes: decibels (F, N) for F frequencies and N times."""
    figure = go.Figure(
        go.Heatmap(x=times, y=frequencies, z=decibels, colorscale="Viridis", colorbar_title="dB")
    )
    figure.update_layout(
        title="Spectrogram",
        margin=_MARGIN,
        height=300,
        xaxis_title="time, s",
        yaxis_title="frequency, Hz",
    )
    return figure


def _span(text: str, kind: str) -> html.Span:
    return html.Span(text, className=f"diff-{kind}", style=DIFF_STYLES[kind])


def diff_view(spans: Sequence[DiffSpan]) -> list[Any]:
    """Colored spans of a word diff: deleted words struck out in red, inserted ones in green,
    substituted ones struck out in red followed by the hypothesis's words in yellow."""
    children: list[Any] = []
    for span in spans:
        if children:
            children.append(" ")
        if span.operation == "equal":
            children.append(_span(span.reference, "equal"))
        elif span.operation == "delete":
            children.append(_span(span.reference, "delete"))
        elif span.operation == "insert":
            children.append(_span(span.hypothesis, "insert"))
        else:
            children.append(_span(span.reference, "substitute-reference"))
            children.append(" ")
            children.append(_span(span.hypothesis, "substitute-hypothesis"))
    return children
