"""Training metrics: a CSV file (always) and TensorBoard when the ``tensorboard`` package is installed."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append rows ``step, epoch, key=value…`` to ``OUT/metrics.csv``; new keys extend the header."""

    def __init__(self, out_dir: Path, enabled: bool = True):
        self.path = out_dir / "metrics.csv"
        self.enabled = enabled
        self._fields: list[str] = []
        self._tb = None
        if not enabled:
            return
        if self.path.exists():
            with self.path.open(newline="") as fh:
                self._fields = next(csv.reader(fh), [])
        try:  # torch.utils.tensorboard needs the tensorboard package, which is optional
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))
        except ImportError:
            self._tb = None

    @property
    def tensorboard(self) -> bool:
        return self._tb is not None

    def write(self, step: int, epoch: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch, **values}
        if any(k not in self._fields for k in row):
            self._rewrite_header([*self._fields, *[k for k in row if k not in self._fields]])
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self._fields).writerow(row)
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, step)

    def _rewrite_header(self, fields: list[str]) -> None:
        rows: list[dict[str, str]] = []
        if self.path.exists():
            with self.path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        self._fields = fields
        with self.path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(out_dir: str | Path, key: str = "loss") -> list[dict[str, str]]:
    """The rows of ``OUT/metrics.csv`` that hold ``key`` (evaluation rows have no loss, say)."""
    with (Path(out_dir) / "metrics.csv").open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if row.get(key)]
