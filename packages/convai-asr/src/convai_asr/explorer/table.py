"""Filtering, sorting and paging of table records on the server.

The browser holds one page of the utterance table at a time; every change of page, sort order or
filter asks the server for the new page. That keeps a 10,000-utterance manifest as fast as a
100-utterance one. Two kinds of filters combine:

- the explorer's own controls (:class:`RowFilter`: transcript substring, duration range, WER
  range, speakers);
- the DataTable's filter row, whose ``filter_query`` strings such as
  ``{duration} s> 3 && {text} icontains "yes"`` are parsed by :func:`parse_filter_query`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Condition",
    "RowFilter",
    "page_of",
    "parse_filter_query",
    "select_rows",
]

_OPERATORS = {
    "=": "=",
    "eq": "=",
    "!=": "!=",
    "ne": "!=",
    "<": "<",
    "lt": "<",
    "<=": "<=",
    "le": "<=",
    ">": ">",
    "gt": ">",
    ">=": ">=",
    "ge": ">=",
    "contains": "contains",
    "datestartswith": "startswith",
}
_CONDITION = re.compile(
    r"^\{(?P<column>[^{}]+)\}\s+(?P<case>[si]?)"
    r"(?P<operator>>=|<=|!=|=|<|>|eq|ne|lt|le|gt|ge|contains|datestartswith)"
    r"\s+(?P<value>.+)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Condition:
    """One clause of a DataTable ``filter_query``: ``{column} operator value``.

    Attributes:
        column: the column id.
        operator: one of ``= != < <= > >= contains startswith``.
        value: the value, a number when it reads as one.
        case_sensitive: whether text comparisons keep case (the ``s`` prefix; ``i`` drops it).
    """

    column: str
    operator: str
    value: str | float
    case_sensitive: bool = False

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` satisfies the clause (a missing value satisfies only ``!=``)."""
        actual = record.get(self.column)
        if actual is None:
            return self.operator == "!="
        if isinstance(self.value, float) and isinstance(actual, (int, float)):
            left: Any = float(actual)
            right: Any = self.value
        else:
            left, right = str(actual), str(self.value)
            if not self.case_sensitive:
                left, right = left.casefold(), right.casefold()
        if self.operator == "contains":
            return str(right) in str(left)
        if self.operator == "startswith":
            return str(left).startswith(str(right))
        try:
            return bool(
                {
                    "=": left == right,
                    "!=": left != right,
                    "<": left < right,
                    "<=": left <= right,
                    ">": left > right,
                    ">=": left >= right,
                }[self.operator]
            )
        except TypeError:
            return False


def _value(raw: str) -> str | float:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'`":
        return raw[1:-1]
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def parse_filter_query(query: str | None) -> list[Condition]:
    """The clauses of a DataTable ``filter_query`` (joined by ``&&``).

    Raises:
        ValueError: a clause is not ``{column} operator value`` with a known operator.
    """
    conditions: list[Condition] = []
    for part in (query or "").split(" && "):
        part = part.strip()
        if not part:
            continue
        found = _CONDITION.match(part)
        if found is None:
            raise ValueError(
                f"cannot read the filter {part!r}: write a comparison such as '> 3', '<= 0.5' "
                "or a word to look for"
            )
        conditions.append(
            Condition(
                column=found["column"],
                operator=_OPERATORS[found["operator"]],
                value=_value(found["value"]),
                case_sensitive=found["case"] == "s",
            )
        )
    return conditions


@dataclass(frozen=True)
class RowFilter:
    """The explorer's own filter controls; an unset bound or an empty value filters nothing.

    Attributes:
        text: a substring of the transcript (case-insensitive).
        min_duration: shortest duration kept, seconds.
        max_duration: longest duration kept, seconds.
        min_wer: lowest WER kept, percent (rows without a prediction are dropped once set).
        max_wer: highest WER kept, percent.
        speakers: the speakers kept (empty: all).
    """

    text: str = ""
    min_duration: float | None = None
    max_duration: float | None = None
    min_wer: float | None = None
    max_wer: float | None = None
    speakers: tuple[str, ...] = ()

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.text and self.text.casefold() not in record["text"].casefold():
            return False
        duration = record["duration"]
        if self.min_duration is not None and duration < self.min_duration:
            return False
        if self.max_duration is not None and duration > self.max_duration:
            return False
        if self.min_wer is not None or self.max_wer is not None:
            wer = record.get("wer")
            if wer is None:
                return False
            if self.min_wer is not None and wer < self.min_wer:
                return False
            if self.max_wer is not None and wer > self.max_wer:
                return False
        return not self.speakers or record.get("speaker") in self.speakers


def select_rows(
    records: Sequence[Mapping[str, Any]],
    *,
    row_filter: RowFilter | None = None,
    conditions: Sequence[Condition] = (),
    sort_by: Sequence[Mapping[str, str]] = (),
) -> list[int]:
    """Positions of the records that pass every filter, in the order ``sort_by`` asks.

    Args:
        records: the table's records.
        row_filter: the explorer's own filter controls.
        conditions: clauses from :func:`parse_filter_query`.
        sort_by: the DataTable's ``sort_by``: ``[{"column_id": ..., "direction": "asc" |
            "desc"}, ...]``, the first entry sorting first. Missing values sort last.
    """
    selected = [
        i
        for i, record in enumerate(records)
        if (row_filter is None or row_filter.matches(record))
        and all(c.matches(record) for c in conditions)
    ]
    for order in reversed(list(sort_by)):
        column = order["column_id"]
        descending = order.get("direction") == "desc"
        present = [i for i in selected if records[i].get(column) is not None]
        missing = [i for i in selected if records[i].get(column) is None]
        present.sort(key=lambda i: records[i][column], reverse=descending)
        selected = present + missing
    return selected


def page_of(selected: Sequence[int], page_current: int | None, page_size: int) -> list[int]:
    """The positions on page ``page_current`` (0-based; clamped to the last page)."""
    pages = max(1, math.ceil(len(selected) / page_size))
    current = min(max(page_current or 0, 0), pages - 1)
    return list(selected[current * page_size : (current + 1) * page_size])
