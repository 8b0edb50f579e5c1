"""The result of an export: what was written and how closely it matches the eager model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """One comparison of an export with the eager module on one input."""

    runner: str  # "onnxruntime", "torch.jit", "onnxruntime fp16"...
    kind: str  # "real" or "random"
    batch: int
    length: int
    output: str
    max_abs_diff: float
    tolerance: float
    passed: bool


@dataclass
class ExportReport:
    """What :func:`convai_export.export_model` wrote and verified."""

    format: str
    output: Path
    files: list[Path] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def table(self) -> str:
        """The verification as an aligned text table."""
        rows = [("runner", "input", "batch", "length", "output", "max |diff|", "tolerance", "ok")]
        for c in self.checks:
            rows.append(
                (
                    c.runner,
                    c.kind,
                    str(c.batch),
                    str(c.length),
                    c.output,
                    f"{c.max_abs_diff:.3g}",
                    f"{c.tolerance:.3g}",
                    "yes" if c.passed else "NO",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows
        )

    def summary(self) -> str:
        lines = [f"{self.format}: {self.output}"]
        lines += [f"  wrote {f}" for f in self.files]
        lines += [f"  note: {n}" for n in self.notes]
        if self.checks:
            lines.append(
                f"  verified on {len(self.checks)} comparisons; max |diff| {self.max_abs_diff:.3g}"
            )
        return "\n".join(lines)
