"""Server-rendered SVG charts: numbers in, coordinates out (the templates draw them).

No chart library and no script: each chart is a list of shapes with their position,
size, label and series index (a CSS class picks the colour), and a text alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from stemedb.ui.render import show_value
from stemedb.wire import SkepticResult

WIDTH: Final = 560
ROW_HEIGHT: Final = 26
LABEL_WIDTH: Final = 150
SERIES: Final = 6  # colour classes series-0 .. series-5, then again


class Bar(msgspec.Struct, frozen=True):
    x: float
    y: float
    width: float
    height: float
    series: int
    label: str


class TierRow(msgspec.Struct, frozen=True):
    tier: int
    y: float
    bars: list[Bar]


class TierChart(msgspec.Struct, frozen=True):
    width: int
    height: int
    rows: list[TierRow]
    legend: list[tuple[int, str]]


def tier_chart(result: SkepticResult, value_names: Sequence[str]) -> TierChart:
    """Support share by source tier: one row per tier, one bar per value (stacked)."""
    series = {name: i % SERIES for i, name in enumerate(value_names)}
    tiers = sorted({claim.tier for claim in result.claims})
    span = WIDTH - LABEL_WIDTH - 10
    rows: list[TierRow] = []
    for index, tier in enumerate(tiers):
        y = 8 + index * ROW_HEIGHT
        x = float(LABEL_WIDTH)
        bars: list[Bar] = []
        for claim in (c for c in result.claims if c.tier == tier):
            name = show_value(claim.value)
            width = max(1.0, claim.support_share * span)
            bars.append(
                Bar(
                    x=round(x, 1),
                    y=y,
                    width=round(width, 1),
                    height=ROW_HEIGHT - 8,
                    series=series.get(name, 0),
                    label=f"{name}: {claim.support_share:.0%} ({claim.source_class})",
                )
            )
            x += width
        rows.append(TierRow(tier=tier, y=y, bars=bars))
    legend = [(series[name], name) for name in value_names]
    return TierChart(width=WIDTH, height=16 + len(rows) * ROW_HEIGHT, rows=rows, legend=legend)


class Line(msgspec.Struct, frozen=True):
    series: int
    label: str
    points: str  # the polyline's "x,y x,y ..."


class TimeChart(msgspec.Struct, frozen=True):
    width: int
    height: int
    lines: list[Line]
    ticks: list[tuple[float, str]]


def time_chart(
    times: Sequence[str], shares: dict[str, list[float]], value_names: Sequence[str]
) -> TimeChart:
    """Each value's share of the support at each point of the timeline."""
    height, left, top = 140, 40, 10
    plot_w, plot_h = WIDTH - left - 10, height - top - 30
    count = max(1, len(times) - 1)
    series = {name: i % SERIES for i, name in enumerate(value_names)}
    lines = []
    for name, values in shares.items():
        points = " ".join(
            f"{left + i * plot_w / count:.1f},{top + (1 - v) * plot_h:.1f}"
            for i, v in enumerate(values)
        )
        lines.append(Line(series=series.get(name, 0), label=name, points=points))
    ticks = [(round(left + i * plot_w / count, 1), label) for i, label in enumerate(times)]
    return TimeChart(width=WIDTH, height=height, lines=lines, ticks=ticks)


__all__ = ["TierChart", "TimeChart", "tier_chart", "time_chart"]
