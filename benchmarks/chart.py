"""Draw the benchmark tables as SVG bar charts for the docs: ``python benchmarks/chart.py``.

Reads the throughput rows of the "Performance" table in README.md and of the
blocking-handlers table of docs/benchmarks.md (the first figure of each cell),
and writes ``docs/_static/benchmarks.svg`` and ``docs/_static/blocking.svg``:
one group of bars per row, each bar the server's figure relative to the best
one. No plotting library: the SVG is written by hand.
"""

from __future__ import annotations

import re
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (the Markdown file, the heading its table follows, the rows charted, the SVG written)
CHARTS = (
    (
        ROOT / "README.md",
        "## Performance",
        ("echo, 1 client", "echo, 10 clients", "echo, 100 clients", "echo 1 MiB", "broadcast"),
        ROOT / "docs" / "_static" / "benchmarks.svg",
    ),
    (
        ROOT / "docs" / "benchmarks.md",
        "## Blocking handlers",
        ("in time.sleep", "inside C"),
        ROOT / "docs" / "_static" / "blocking.svg",
    ),
)
COLOURS = ["#2b6cb0", "#c05621", "#2f855a", "#805ad5", "#b7791f"]


def number(cell: str) -> float | None:
    match = re.match(r"\s*\**([\d.,]+)\s*(k?)", cell)
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return value * 1000 if match.group(2) else value


def table(text: str, heading: str, prefixes: tuple[str, ...]) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    section = text.split(heading, 1)[1].splitlines()
    # The first table after the heading only: the section has others, with other columns.
    start = next(index for index, line in enumerate(section) if line.startswith("|"))
    lines = []
    for line in section[start:]:
        if not line.startswith("|"):
            break
        lines.append(line)
    servers = [cell.strip() for cell in lines[0].strip("|").split("|")[1:]]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0].startswith(prefixes):
            rows.append((cells[0].split(":")[0], [number(cell) for cell in cells[1:]]))
    return servers, rows


def svg(servers: list[str], rows: list[tuple[str, list[float | None]]]) -> str:
    bar, gap, label_width = 14, 10, 210
    width = max(720, label_width + len(servers) * 130 + 20)
    height = 40 + len(rows) * (len(servers) * bar + gap * 2) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
    ]
    for index, server in enumerate(servers):
        x = label_width + index * 130
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{COLOURS[index % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 16}" y="19">{escape(server)}</text>')
    y = 40
    scale = width - label_width - 80
    for metric, values in rows:
        best = max(v for v in values if v is not None)
        parts.append(f'<text x="4" y="{y + len(servers) * bar / 2 + 4}">{escape(metric)}</text>')
        for index, value in enumerate(values):
            if value is not None:
                length = max(1.0, scale * value / best)
                colour = COLOURS[index % len(COLOURS)]
                parts.append(
                    f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{colour}"/>'
                )
                shown = f"{value / 1000:.1f}k" if value >= 1000 else f"{value:g}"
                parts.append(f'<text x="{label_width + length + 4:.1f}" y="{y + bar - 4}">{shown}</text>')
            y += bar
        y += gap * 2
    parts.append(
        f'<text x="4" y="{height - 10}" fill="#555">bars relative to the best of each row; higher is better</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    for source, heading, prefixes, out in CHARTS:
        servers, rows = table(source.read_text(), heading, prefixes)
        if not rows:
            sys.exit(f"no benchmark rows found under {heading!r} in {source.relative_to(ROOT)}")
        out.write_text(svg(servers, rows))
        print(f"wrote {out.relative_to(ROOT)}: {len(rows)} rows, {len(servers)} servers")


if __name__ == "__main__":
    main()
