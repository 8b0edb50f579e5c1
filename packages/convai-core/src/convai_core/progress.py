"""Training progress a person can read: step, loss, elapsed and remaining time.

:class:`ProgressLines` is a Lightning callback. In a terminal it keeps one status line up to date
(rewritten in place about once a second); in a log (standard error is not a terminal) it writes a
new line every ``every_s`` seconds, so a log never fills with carriage returns. ``convai train``
uses it instead of Lightning's progress bar when standard error is not a terminal.

The remaining time is the sooner of the two limits: ``max_steps`` at the pace so far, and
``max_time``.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import pytorch_lightning as pl

__all__ = ["ProgressLines", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _time_left_s(trainer: pl.Trainer) -> float | None:
    """Seconds left of ``max_time`` (Lightning's Timer counts a resumed run's earlier time)."""
    for callback in getattr(trainer, "callbacks", []):
        if type(callback).__name__ == "Timer" and hasattr(callback, "time_remaining"):
            left = callback.time_remaining("train")
            return None if left is None else float(left)
    return None


class ProgressLines(pl.Callback):
    """Report training progress as text (see the module docstring).

    Args:
        every_s: seconds between lines in a log (in a terminal the line is rewritten each second).
        stream: where to write (default: standard error).
        prefix: the start of every line.
    """

    def __init__(
        self, every_s: float = 30.0, stream: IO[str] | None = None, prefix: str = "train"
    ) -> None:
        self.every_s = float(every_s)
        self.stream = stream
        self.prefix = prefix
        self._start = 0.0
        self._last = 0.0
        self._width = 0
        self._first_step = 0

    @property
    def _out(self) -> IO[str]:
        return self.stream or sys.stderr

    @property
    def _terminal(self) -> bool:
        return bool(getattr(self._out, "isatty", lambda: False)())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()
        self._last = self._start
        self._first_step = trainer.global_step  # more than 0 when the run resumed

    def status(self, trainer: pl.Trainer, loss: float | None) -> str:
        """The progress line for the trainer's current state."""
        elapsed = time.monotonic() - self._start
        step = trainer.global_step
        max_steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        parts = [f"{self.prefix}: step {step}" + (f"/{max_steps}" if max_steps else "")]
        if max_steps:
            parts[0] += f" ({100 * step / max_steps:.0f}%)"
        if loss is not None:
            parts.append(f"loss {loss:.3f}")
        left = []
        done = step - self._first_step  # steps of this process (a resumed run started later)
        if max_steps and done > 0:
            left.append(elapsed / done * (max_steps - step))
        remaining = _time_left_s(trainer)
        if remaining is not None:
            left.append(remaining)
        timing = f"{format_seconds(elapsed)} elapsed"
        if left:
            timing += f", ~{format_seconds(min(left))} left"
        parts.append(timing)
        return ", ".join(parts)

    def _write(self, line: str, *, final: bool = False) -> None:
        if self._terminal:
            padded = line.ljust(self._width)
            self._width = len(line)
            self._out.write("\r" + padded + ("\n" if final else ""))
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not trainer.is_global_zero:
            return
        now = time.monotonic()
        if now - self._last < (1.0 if self._terminal else self.every_s):
            return
        self._last = now
        self._write(self.status(trainer, _loss(outputs)))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            loss = trainer.callback_metrics.get("train_loss_step")
            line = f"{self.prefix}: done at step {trainer.global_step}"
            if loss is not None and loss.numel() == 1:
                line += f", loss {float(loss):.3f}"
            line += f", {format_seconds(time.monotonic() - self._start)}"
            self._write(line, final=True)


def _loss(outputs: Any) -> float | None:
    value = outputs.get("loss") if isinstance(outputs, dict) else outputs
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return None
