"""The explorer page's layout: notices, the Statistics, Error analysis and Utterances tabs.

Elements that tests (and users' scripts) read carry ids: ``stat-*`` for the dataset summary,
``metric-*`` for the error analysis, ``notice-*`` for skipped or unmatched input; numbers also
carry a ``data-value`` attribute with the exact value. The tables start empty: the callbacks of
:mod:`convai_asr.explorer.app` fill them one page at a time.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from dash import dcc, html
from dash.dash_table.Format import Format, Scheme

from convai_asr.explorer.dataset import HISTOGRAM_BINS, Dataset
from convai_asr.explorer.figures import empty_figure, histogram_figure
from convai_asr.explorer.predictions import ErrorAnalysis

__all__ = ["PAGE_SIZE", "ExplorerState", "page_layout", "table_records", "vocabulary_records"]

PAGE_SIZE = 20
WER_BINS = 20
_SHOWN_EXAMPLES = 10
_SHOWN_RARE_WORDS = 500

_PAGE_STYLE = {"fontFamily": "sans-serif", "margin": "0 2em 2em 2em"}
_NOTICE_STYLE = {
    "backgroundColor": "#fff3cd",
    "border": "1px solid #ffe08a",
    "padding": "0.5em 1em",
    "margin": "0.5em 0",
}
_CELL_STYLE = {"padding": "2px 12px", "borderBottom": "1px solid #ddd"}
_TABLE_CELL = {
    "textAlign": "left",
    "whiteSpace": "normal",
    "height": "auto",
    "fontFamily": "sans-serif",
    "fontSize": "14px",
}


@dataclass
class ExplorerState:
    """What the callbacks read: the dataset, its error analysis and the table records."""

    dataset: Dataset
    analysis: ErrorAnalysis | None
    records: list[dict[str, Any]]
    vocabulary: list[dict[str, Any]]
    known_words: frozenset[str] | None = None


def table_records(
    dataset: Dataset,
    analysis: ErrorAnalysis | None,
    known_words: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """The utterance table's records: the dataset rows plus ``id`` (the row index, which the
    DataTable reports back as ``row_id``), ``file`` (the audio file's name), ``audio`` ("ok" or
    "missing"), with predictions ``hypothesis``, ``wer`` and ``cer`` (percent), and with a
    vocabulary ``oov`` (the number of words outside it)."""
    missing = set(dataset.missing_audio)
    records = []
    for row in dataset.rows:
        record = dict(row)
        record["id"] = row["index"]
        record["file"] = os.path.basename(row["audio_filepath"])
        record["audio"] = "missing" if row["index"] in missing else "ok"
        if analysis is not None:
            i = row["index"]
            record["hypothesis"] = analysis.hypotheses[i]
            wer, cer = analysis.wer[i], analysis.cer[i]
            record["wer"] = None if wer is None else 100 * wer
            record["cer"] = None if cer is None else 100 * cer
        if known_words is not None:
            record["oov"] = sum(w not in known_words for w in row["text"].split())
        records.append(record)
    return records


def vocabulary_records(
    dataset: Dataset,
    analysis: ErrorAnalysis | None,
    known_words: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """The vocabulary table's records: ``word``, ``count``, with predictions ``accuracy``
    (percent of its occurrences recognized) and with a vocabulary ``oov`` ("yes" or "")."""
    records = []
    for word, count in dataset.stats.vocabulary.items():
        record: dict[str, Any] = {"id": word, "word": word, "count": count}
        if analysis is not None:
            accuracy = analysis.word_accuracy.get(word)
            record["accuracy"] = None if accuracy is None else 100 * accuracy
        if known_words is not None:
            record["oov"] = "" if word in known_words else "yes"
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------


def _number(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _value_row(
    prefix: str, label: str, name: str, shown: str, value: float | int | None
) -> html.Tr:
    extra: dict[str, Any] = {} if value is None else {"data-value": repr(value)}
    return html.Tr(
        [
            html.Td(label, style=_CELL_STYLE),
            html.Td(shown, id=f"{prefix}-{name}", style=_CELL_STYLE, **extra),
        ]
    )


def _stat_row(label: str, name: str, shown: str, value: float | int | None = None) -> html.Tr:
    return _value_row("stat", label, name, shown, value)


def _metric_row(label: str, name: str, shown: str, value: float | int) -> html.Tr:
    return _value_row("metric", label, name, shown, value)


def _numeric(column_id: str, name: str, digits: int = 2) -> dict[str, Any]:
    return {
        "id": column_id,
        "name": name,
        "type": "numeric",
        "format": Format(precision=digits, scheme=Scheme.fixed),
    }


def _data_table(**props: Any) -> Any:
    # Dash 4 marks DataTable as deprecated (it still ships it; we pin dash<5).
    from dash.dash_table.DataTable import DataTable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return DataTable(
            style_cell=_TABLE_CELL,
            style_header={"fontWeight": "bold"},
            **props,
        )


def _notices(state: ExplorerState) -> list[Any]:
    dataset, analysis = state.dataset, state.analysis
    notices: list[Any] = []
    if dataset.skipped_lines:
        message = dataset.skip_message or (
            f"skipped {dataset.skipped_lines} malformed line(s) of manifest {dataset.manifest}"
        )
        notices.append(
            html.Div(message[:1].upper() + message[1:], id="notice-skipped", style=_NOTICE_STYLE)
        )
    if dataset.missing_audio:
        examples = ", ".join(
            f"line {dataset.rows[i]['line']}: {dataset.rows[i]['audio_filepath']}"
            for i in dataset.missing_audio[:_SHOWN_EXAMPLES]
        )
        notices.append(
            html.Div(
                f"{len(dataset.missing_audio)} utterance(s) name an audio file that does not "
                f"exist ({examples}); their rows show audio 'missing'.",
                id="notice-missing-audio",
                style=_NOTICE_STYLE,
            )
        )
    if analysis is not None and analysis.unmatched_lines:
        notices.append(
            html.Div(
                f"{analysis.unmatched_lines} prediction line(s) match no utterance of the "
                f"manifest ({'; '.join(analysis.unmatched_examples)}); they are left out of "
                "the error rates.",
                id="notice-unmatched",
                style=_NOTICE_STYLE,
            )
        )
    if analysis is not None and analysis.malformed_lines:
        notices.append(
            html.Div(
                f"Skipped {analysis.malformed_lines} malformed prediction line(s) of "
                f"{analysis.predictions} ({'; '.join(analysis.malformed_examples)}).",
                id="notice-malformed-predictions",
                style=_NOTICE_STYLE,
            )
        )
    if analysis is not None and analysis.rows_without_prediction:
        notices.append(
            html.Div(
                f"{analysis.rows_without_prediction} utterance(s) have no prediction; the "
                "error rates cover the other "
                f"{analysis.matched}.",
                id="notice-without-prediction",
                style=_NOTICE_STYLE,
            )
        )
    return notices


def _row_histogram(dataset: Dataset, key: str, title: str, x_title: str) -> html.Div:
    values = np.asarray([row[key] for row in dataset.rows], dtype=np.float64)
    counts: list[int] = []
    edges: list[float] = []
    if len(values):
        bin_counts, bin_edges = np.histogram(values, bins=HISTOGRAM_BINS)
        counts, edges = bin_counts.tolist(), bin_edges.tolist()
    figure = histogram_figure(counts, edges, title=title, x_title=x_title)
    return html.Div(
        dcc.Graph(id=f"{key.replace('_', '-')}-histogram", figure=figure), style={"flex": "1"}
    )


def _statistics_tab(state: ExplorerState) -> dcc.Tab:
    dataset = state.dataset
    stats = dataset.stats
    summary = [
        _stat_row("utterances", "utterances", f"{stats.utterances:,}", stats.utterances),
        _stat_row(
            "total duration, hours", "hours", _number(stats.total_hours, 3), stats.total_hours
        ),
        _stat_row(
            "total duration, s",
            "total-seconds",
            _number(stats.total_duration_s),
            stats.total_duration_s,
        ),
        _stat_row(
            "shortest, s", "min-duration", _number(stats.min_duration_s), stats.min_duration_s
        ),
        _stat_row(
            "longest, s", "max-duration", _number(stats.max_duration_s), stats.max_duration_s
        ),
        _stat_row(
            "mean, s", "mean-duration", _number(stats.mean_duration_s), stats.mean_duration_s
        ),
        _stat_row("words", "words", f"{stats.words:,}", stats.words),
        _stat_row("characters", "characters", f"{stats.characters:,}", stats.characters),
        _stat_row(
            "vocabulary size", "vocabulary", f"{len(stats.vocabulary):,}", len(stats.vocabulary)
        ),
        _stat_row("alphabet size", "alphabet", f"{len(stats.alphabet):,}", len(stats.alphabet)),
        _stat_row("speakers", "speakers", f"{len(stats.speakers):,}", len(stats.speakers)),
        _stat_row("skipped lines", "skipped", f"{dataset.skipped_lines:,}", dataset.skipped_lines),
        _stat_row(
            "missing audio files",
            "missing-audio",
            f"{len(dataset.missing_audio):,}",
            len(dataset.missing_audio),
        ),
    ]
    if state.known_words is not None:
        oov = {w: n for w, n in stats.vocabulary.items() if w not in state.known_words}
        summary += [
            _stat_row("out-of-vocabulary words", "oov-words", f"{len(oov):,}", len(oov)),
            _stat_row(
                "out-of-vocabulary occurrences",
                "oov-occurrences",
                f"{sum(oov.values()):,}",
                sum(oov.values()),
            ),
        ]
    children: list[Any] = [
        html.H3("Dataset"),
        html.Table(html.Tbody(summary), id="summary"),
        dcc.Graph(
            id="duration-histogram",
            figure=histogram_figure(
                stats.histogram_counts,
                stats.histogram_edges,
                title="Duration histogram",
                x_title="duration, s",
            ),
        ),
        html.Div(
            [
                _row_histogram(dataset, "words", "Words per utterance", "words"),
                _row_histogram(dataset, "char_rate", "Character rate", "characters / s"),
                _row_histogram(dataset, "word_rate", "Word rate", "words / s"),
            ],
            style={"display": "flex"},
        ),
    ]
    if stats.speakers:
        children += [
            html.H3("Speakers"),
            _data_table(
                id="speakers",
                columns=[
                    {"id": "speaker", "name": "speaker"},
                    {"id": "utterances", "name": "utterances", "type": "numeric"},
                    _numeric("minutes", "minutes"),
                ],
                data=[
                    {
                        "speaker": speaker,
                        "utterances": count,
                        "minutes": stats.speaker_durations_s[speaker] / 60,
                    }
                    for speaker, count in stats.speakers.items()
                ],
                sort_action="native",
                page_action="native",
                page_size=10,
            ),
        ]
    if stats.languages:
        children += [
            html.H3("Languages"),
            html.Ul([html.Li(f"{lang}: {n:,} utterances") for lang, n in stats.languages.items()]),
        ]
    vocabulary_columns = [
        {"id": "word", "name": "word"},
        {"id": "count", "name": "count", "type": "numeric"},
    ]
    if state.analysis is not None:
        vocabulary_columns.append(_numeric("accuracy", "accuracy, %", 1))
    if state.known_words is not None:
        vocabulary_columns.append({"id": "oov", "name": "OOV"})
    rare = stats.rare_words()
    children += [
        html.H3("Alphabet"),
        _data_table(
            id="alphabet",
            columns=[
                {"id": "character", "name": "character"},
                {"id": "code", "name": "code point"},
                {"id": "count", "name": "count", "type": "numeric"},
            ],
            data=[
                {"character": "(space)" if c == " " else c, "code": f"U+{ord(c):04X}", "count": n}
                for c, n in stats.alphabet.items()
            ],
            sort_action="native",
            page_action="native",
            page_size=15,
        ),
        html.H3("Vocabulary"),
        _data_table(
            id="vocabulary",
            columns=vocabulary_columns,
            data=[],
            page_action="custom",
            page_current=0,
            page_size=PAGE_SIZE,
            sort_action="custom",
            sort_mode="single",
            sort_by=[],
            filter_action="custom",
            filter_query="",
        ),
        html.Details(
            [
                html.Summary(
                    f"Rare words (seen once): {len(rare):,} of {len(stats.vocabulary):,}",
                    id="rare-words-summary",
                ),
                html.P(
                    ", ".join(rare[:_SHOWN_RARE_WORDS])
                    + (
                        f" ... and {len(rare) - _SHOWN_RARE_WORDS:,} more"
                        if len(rare) > _SHOWN_RARE_WORDS
                        else ""
                    ),
                    id="rare-words",
                ),
            ]
        ),
    ]
    return dcc.Tab(label="Statistics", value="statistics", id="tab-statistics", children=children)


def _errors_tab(analysis: ErrorAnalysis) -> dcc.Tab:
    subs, dels, ins, ref_words = analysis.word_counts
    rates = [100 * w for w in analysis.wer if w is not None]
    top = max(100.0, math.ceil(max(rates, default=0.0) / 10) * 10)
    counts = [0] * WER_BINS
    for rate in rates:
        counts[min(int(rate / top * WER_BINS), WER_BINS - 1)] += 1
    edges = [top * k / WER_BINS for k in range(WER_BINS + 1)]
    rows = [
        _metric_row("WER", "wer", f"{100 * analysis.wer_total:.2f} %", analysis.wer_total),
        _metric_row("CER", "cer", f"{100 * analysis.cer_total:.2f} %", analysis.cer_total),
        _metric_row(
            "word match rate (WMR)",
            "wmr",
            f"{100 * analysis.word_match_rate:.2f} %",
            analysis.word_match_rate,
        ),
        _metric_row(
            "mean word accuracy",
            "mwa",
            f"{100 * analysis.mean_word_accuracy:.2f} %",
            analysis.mean_word_accuracy,
        ),
        _metric_row("reference words", "reference-words", f"{ref_words:,}", ref_words),
        _metric_row("substitutions", "substitutions", f"{subs:,}", subs),
        _metric_row("deletions", "deletions", f"{dels:,}", dels),
        _metric_row("insertions", "insertions", f"{ins:,}", ins),
        _metric_row(
            "utterances with a prediction", "matched", f"{analysis.matched:,}", analysis.matched
        ),
        _metric_row(
            "utterances without a prediction",
            "without-prediction",
            f"{analysis.rows_without_prediction:,}",
            analysis.rows_without_prediction,
        ),
        _metric_row(
            "prediction lines matching no utterance",
            "unmatched",
            f"{analysis.unmatched_lines:,}",
            analysis.unmatched_lines,
        ),
        _metric_row(
            "malformed prediction lines",
            "malformed",
            f"{analysis.malformed_lines:,}",
            analysis.malformed_lines,
        ),
    ]
    children = [
        html.H3("Error analysis"),
        html.P(f"Predictions: {analysis.predictions}"),
        html.Table(html.Tbody(rows), id="error-summary"),
        html.P(
            "WER and CER sum the edits over all utterances with a prediction; WMR is the share "
            "of reference words recognized; mean word accuracy averages each distinct "
            "reference word's recognized share (see the vocabulary's accuracy column)."
        ),
        dcc.Graph(
            id="wer-histogram",
            figure=histogram_figure(counts, edges, title="WER per utterance", x_title="WER, %"),
        ),
    ]
    return dcc.Tab(label="Error analysis", value="errors", id="tab-errors", children=children)


def _number_input(component_id: str, placeholder: str) -> dcc.Input:
    return dcc.Input(
        id=component_id,
        type="number",
        placeholder=placeholder,
        debounce=True,
        style={"width": "7em", "marginRight": "0.5em"},
    )


def _utterances_tab(state: ExplorerState) -> dcc.Tab:
    dataset, analysis = state.dataset, state.analysis
    columns: list[dict[str, Any]] = [
        {"id": "index", "name": "#", "type": "numeric"},
        {"id": "file", "name": "file"},
        _numeric("duration", "duration, s"),
    ]
    if dataset.has_offsets:
        columns.append(_numeric("offset", "offset, s"))
    columns.append({"id": "text", "name": "text"})
    if analysis is not None:
        columns += [
            {"id": "hypothesis", "name": "hypothesis"},
            _numeric("wer", "WER, %", 1),
            _numeric("cer", "CER, %", 1),
        ]
    if dataset.has_speakers:
        columns.append({"id": "speaker", "name": "speaker"})
    if dataset.has_languages:
        columns.append({"id": "lang", "name": "lang"})
    columns += [
        {"id": "words", "name": "words", "type": "numeric"},
        {"id": "chars", "name": "chars", "type": "numeric"},
        _numeric("char_rate", "chars/s", 1),
        _numeric("word_rate", "words/s", 2),
    ]
    if state.known_words is not None:
        columns.append({"id": "oov", "name": "OOV words", "type": "numeric"})
    if dataset.missing_audio:
        columns.append({"id": "audio", "name": "audio"})
    hidden = {"display": "none"}
    filters = html.Div(
        [
            dcc.Input(
                id="filter-text",
                type="text",
                placeholder="text contains...",
                debounce=True,
                style={"width": "16em", "marginRight": "1em"},
            ),
            html.Span("duration, s: ", style={"marginRight": "0.3em"}),
            _number_input("filter-duration-min", "min"),
            _number_input("filter-duration-max", "max"),
            html.Span(
                [
                    html.Span("WER, %: ", style={"margin": "0 0.3em 0 0.7em"}),
                    _number_input("filter-wer-min", "min"),
                    _number_input("filter-wer-max", "max"),
                ],
                style={} if analysis is not None else hidden,
            ),
            html.Div(
                dcc.Dropdown(
                    id="filter-speaker",
                    options=list(dataset.stats.speakers),
                    multi=True,
                    placeholder="speakers...",
                ),
                style={"width": "22em", "display": "inline-block", "verticalAlign": "middle"}
                if dataset.has_speakers
                else hidden,
            ),
        ],
        style={"margin": "1em 0"},
    )
    detail = html.Div(
        [
            html.H4("Click a row to see and hear the utterance.", id="detail-title"),
            html.Div(id="detail-info"),
            html.Div(id="detail-error", style={"color": "#b00020"}),
            html.Audio(id="player", controls=True, style={"width": "100%"}),
            html.Div(id="word-diff", style={"margin": "0.5em 0", "lineHeight": "1.8"}),
            dcc.Graph(id="waveform", figure=empty_figure("Waveform")),
            dcc.Graph(id="spectrogram", figure=empty_figure("Spectrogram")),
        ],
        id="utterance-detail",
    )
    children = [
        filters,
        html.Div(id="utterance-count", style={"margin": "0.5em 0"}),
        html.Div(id="filter-error", style={"color": "#b00020"}),
        _data_table(
            id="utterances",
            columns=columns,
            data=[],
            page_action="custom",
            page_current=0,
            page_size=PAGE_SIZE,
            page_count=1,
            sort_action="custom",
            sort_mode="multi",
            sort_by=[],
            filter_action="custom",
            filter_query="",
            style_table={"overflowX": "auto"},
            style_data_conditional=[
                {
                    "if": {"state": "active"},
                    "backgroundColor": "#dbe9f6",
                    "border": "1px solid #4c78a8",
                }
            ],
        ),
        detail,
    ]
    return dcc.Tab(label="Utterances", value="utterances", id="tab-utterances", children=children)


def page_layout(state: ExplorerState) -> html.Div:
    """The whole page for ``state``."""
    tabs = [_statistics_tab(state)]
    if state.analysis is not None:
        tabs.append(_errors_tab(state.analysis))
    tabs.append(_utterances_tab(state))
    return html.Div(
        [
            html.H2("Speech Data Explorer"),
            html.P(f"Manifest: {state.dataset.manifest}", id="manifest-path"),
            html.Div(_notices(state), id="notices"),
            dcc.Tabs(id="tabs", value="statistics", children=tabs),
        ],
        style=_PAGE_STYLE,
    )
