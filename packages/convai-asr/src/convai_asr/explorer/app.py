"""The Dash app of the Speech Data Explorer: its callbacks and the audio route.

Three tabs (laid out by :mod:`convai_asr.explorer.layout`): **Statistics** (summary, duration
histogram, speakers, alphabet, vocabulary, rare words), **Error analysis** (with predictions:
corpus WER, CER, word match rate, mean word accuracy, per-utterance WER histogram) and
**Utterances** (the filterable, sortable table, paged on the server; selecting a row shows its
waveform, spectrogram, audio player and word diff).

Audio is served by ``/audio/<row index>.wav``: the server looks the file up in the manifest by
index and sends the utterance's segment as WAV, so no path from the browser ever reaches the file
system.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, State, ctx, html
from flask import Response, abort

from convai_asr.errors import AudioError
from convai_asr.explorer.audio import read_segment, spectrogram, wav_bytes, waveform_envelope
from convai_asr.explorer.dataset import Dataset
from convai_asr.explorer.figures import (
    diff_view,
    empty_figure,
    spectrogram_figure,
    waveform_figure,
)
from convai_asr.explorer.layout import (
    PAGE_SIZE,
    ExplorerState,
    page_layout,
    table_records,
    vocabulary_records,
)
from convai_asr.explorer.predictions import ErrorAnalysis, word_diff
from convai_asr.explorer.table import RowFilter, page_of, parse_filter_query, select_rows

__all__ = ["build_app"]

# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------


def _float_or_none(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _register_table_callbacks(app: dash.Dash, state: ExplorerState) -> None:
    control_ids = {
        "filter-text",
        "filter-duration-min",
        "filter-duration-max",
        "filter-wer-min",
        "filter-wer-max",
        "filter-speaker",
    }

    @app.callback(
        Output("utterances", "data"),
        Output("utterances", "page_count"),
        Output("utterances", "page_current"),
        Output("utterance-count", "children"),
        Output("filter-error", "children"),
        Input("utterances", "page_current"),
        Input("utterances", "page_size"),
        Input("utterances", "sort_by"),
        Input("utterances", "filter_query"),
        Input("filter-text", "value"),
        Input("filter-duration-min", "value"),
        Input("filter-duration-max", "value"),
        Input("filter-wer-min", "value"),
        Input("filter-wer-max", "value"),
        Input("filter-speaker", "value"),
    )
    def update_utterances(
        page_current: int | None,
        page_size: int | None,
        sort_by: list[dict[str, str]] | None,
        filter_query: str | None,
        text: str | None,
        min_duration: float | None,
        max_duration: float | None,
        min_wer: float | None,
        max_wer: float | None,
        speakers: Sequence[str] | None,
    ) -> tuple[list[dict[str, Any]], int, int, str, str]:
        problem = ""
        try:
            conditions = parse_filter_query(filter_query)
        except ValueError as exc:
            conditions, problem = [], str(exc)
        row_filter = RowFilter(
            text=(text or "").strip(),
            min_duration=_float_or_none(min_duration),
            max_duration=_float_or_none(max_duration),
            min_wer=_float_or_none(min_wer),
            max_wer=_float_or_none(max_wer),
            speakers=tuple(speakers or ()),
        )
        selected = select_rows(
            state.records, row_filter=row_filter, conditions=conditions, sort_by=sort_by or []
        )
        size = page_size or PAGE_SIZE
        pages = max(1, math.ceil(len(selected) / size))
        current = 0 if ctx.triggered_id in control_ids else min(page_current or 0, pages - 1)
        data = [state.records[i] for i in page_of(selected, current, size)]
        count = f"{len(selected):,} of {len(state.records):,} utterances"
        return data, pages, current, count, problem

    @app.callback(
        Output("vocabulary", "data"),
        Output("vocabulary", "page_count"),
        Input("vocabulary", "page_current"),
        Input("vocabulary", "page_size"),
        Input("vocabulary", "sort_by"),
        Input("vocabulary", "filter_query"),
    )
    def update_vocabulary(
        page_current: int | None,
        page_size: int | None,
        sort_by: list[dict[str, str]] | None,
        filter_query: str | None,
    ) -> tuple[list[dict[str, Any]], int]:
        try:
            conditions = parse_filter_query(filter_query)
        except ValueError:
            conditions = []
        selected = select_rows(state.vocabulary, conditions=conditions, sort_by=sort_by or [])
        size = page_size or PAGE_SIZE
        pages = max(1, math.ceil(len(selected) / size))
        return [state.vocabulary[i] for i in page_of(selected, page_current, size)], pages


def _register_detail_callback(app: dash.Dash, state: ExplorerState) -> None:
    @app.callback(
        Output("detail-title", "children"),
        Output("detail-info", "children"),
        Output("detail-error", "children"),
        Output("player", "src"),
        Output("word-diff", "children"),
        Output("waveform", "figure"),
        Output("spectrogram", "figure"),
        Input("utterances", "active_cell"),
        State("utterances", "data"),
        prevent_initial_call=True,
    )
    def show_utterance(
        active_cell: dict[str, Any] | None, page: list[dict[str, Any]] | None
    ) -> tuple[Any, ...]:
        if not active_cell:
            raise dash.exceptions.PreventUpdate
        index = active_cell.get("row_id")
        if index is None and page and active_cell.get("row") is not None:
            index = page[active_cell["row"]]["id"]
        if not isinstance(index, int) or not 0 <= index < len(state.records):
            raise dash.exceptions.PreventUpdate
        record = state.records[index]
        title = f"#{index}: {record['file']} (manifest line {record['line']})"
        info_items = [
            html.Div(f"audio: {record['audio_filepath']}"),
            html.Div(
                f"duration {record['duration']:.2f} s"
                + (f", offset {record['offset']:.2f} s" if record["offset"] else "")
                + (f", speaker {record['speaker']}" if record["speaker"] is not None else "")
            ),
            html.Div(["reference: ", html.Span(record["text"], id="detail-reference")]),
        ]
        diff: list[Any] = []
        if state.analysis is not None:
            hypothesis = record.get("hypothesis")
            if hypothesis is None:
                diff = ["(no prediction for this utterance)"]
            else:
                info_items.append(
                    html.Div(["hypothesis: ", html.Span(hypothesis, id="detail-hypothesis")])
                )
                info_items.append(html.Div(f"WER {record['wer']:.1f} %, CER {record['cer']:.1f} %"))
                diff = ["diff: ", *diff_view(word_diff(record["text"], hypothesis))]
        try:
            samples, rate = read_segment(
                record["audio_filepath"], offset=record["offset"], duration=record["duration"]
            )
        except AudioError as exc:
            return (
                title,
                info_items,
                str(exc),
                None,
                diff,
                empty_figure("Waveform"),
                empty_figure("Spectrogram"),
            )
        times, values = waveform_envelope(samples, rate)
        return (
            title,
            info_items,
            "",
            app.get_relative_path(f"/audio/{index}.wav"),
            diff,
            waveform_figure(times, values),
            spectrogram_figure(*spectrogram(samples, rate)),
        )


def _register_audio_route(app: dash.Dash, state: ExplorerState) -> None:
    @app.server.route("/audio/<int:index>.wav")
    def audio(index: int) -> Response:
        # The index is looked up in the manifest; the browser never names a file.
        if not 0 <= index < len(state.records):
            abort(404)
        record = state.records[index]
        try:
            samples, rate = read_segment(
                record["audio_filepath"], offset=record["offset"], duration=record["duration"]
            )
        except AudioError as exc:
            return Response(str(exc), status=404, mimetype="text/plain")
        return Response(
            wav_bytes(samples, rate), mimetype="audio/wav", headers={"Cache-Control": "no-store"}
        )


def build_app(
    dataset: Dataset,
    analysis: ErrorAnalysis | None = None,
    *,
    known_words: frozenset[str] | None = None,
) -> dash.Dash:
    """The explorer's Dash app for ``dataset`` (and the error analysis of its predictions).

    ``known_words`` (a vocabulary, e.g. from :func:`~convai_asr.explorer.dataset.read_word_list`)
    marks the manifest's other words as out-of-vocabulary. ``app.run(host=..., port=...)``
    serves the app; ``app.server`` is the Flask app (for a WSGI server or a test client).
    """
    state = ExplorerState(
        dataset=dataset,
        analysis=analysis,
        records=table_records(dataset, analysis, known_words),
        vocabulary=vocabulary_records(dataset, analysis, known_words),
        known_words=known_words,
    )
    app = dash.Dash(
        __name__,
        title="Speech Data Explorer",
        update_title="",
        serve_locally=True,
    )
    app.layout = page_layout(state)
    _register_table_callbacks(app, state)
    _register_detail_callback(app, state)
    _register_audio_route(app, state)
    return app
