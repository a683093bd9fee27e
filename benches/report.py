"""Markdown tables from one benchmark run, for docs/performance.md: medians and ratios within each group.

    python -m pytest benches --benchmark-json=bench.json
    python benches/report.py bench.json

Each group (``benchmark.group``) becomes a table; a row's ratio is its median over the
median of the group's baseline: the first row whose name contains a ``BASELINES`` entry for
the group, else the fastest row. Rows keep their ``extra_info`` (the fleet's throughput and
event-loop lateness live there, not in the timings).
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["BASELINES", "tables"]

#: group prefix -> a substring of the baseline row's name
BASELINES = {
    "dumps": "[native",
    "loads": "[native",
    "auto-save (durable)": "floor_append_line",
    "auto-save (no fsync)": "floor_append_line",
    "auto-save by store": "[file",
    "list": "floor",
    "load a": "[file",
    "load": "orjson",
    "fleet": "test_fleet[",
}


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _figure(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _baseline(group: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    for prefix, needle in BASELINES.items():
        if group.startswith(prefix):
            for row in rows:
                if needle in row["name"]:
                    return row
    return min(rows, key=lambda row: row["stats"]["median"])


def tables(report: dict[str, Any]) -> str:
    """The markdown for every group of a pytest-benchmark JSON report, in the order run."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for bench in report["benchmarks"]:
        groups.setdefault(bench["group"] or "", []).append(bench)
    machine = report["machine_info"]
    out = [f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, {report['datetime']}"]
    if "cpu_steal_percent" in machine:
        out[0] += f", CPU time stolen by the hypervisor during the run: {machine['cpu_steal_percent']}%"
    for group, rows in groups.items():
        base = _baseline(group, rows)
        out += ["", f"### {group}", "", "| benchmark | median | ratio | extra |", "| --- | --- | --- | --- |"]
        for row in rows:
            ratio = row["stats"]["median"] / base["stats"]["median"]
            extra = ", ".join(f"{key}={_figure(value)}" for key, value in row.get("extra_info", {}).items())
            out.append(f"| {row['name']} | {_duration(row['stats']['median'])} | {ratio:.2f}x | {extra} |")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        print(tables(json.load(file)))
