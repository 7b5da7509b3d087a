"""The timeline's bar rows as SVG text, written in Python rather than by a template macro.

A 10,000-step page has 10,000 rows of some 25 values each; a Jinja macro spends
most of the HTML report's time on them (a call, a lookup and an escape per
value). Here numbers are formatted directly and every piece of text (step ids,
remote run ids, platform statuses) goes through `markupsafe.escape`, the same
escaping the template's autoescape applies, so the page is byte-for-byte as safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup, escape

TAIL_TITLE = "the remote run may still be going: the platform offers no cancel"


def _segment(seg: dict[str, Any], row: dict[str, Any], tl: dict[str, Any]) -> str:
    x, width, bar_y, bar = seg["x"], seg["width"], row["bar_y"], tl["bar"]
    unfinished = " unfinished" if seg["unfinished"] else ""
    out = (
        f'<g class="s-{escape(seg["status"])}" data-attempt="{seg["number"]}">'
        f"<title>{escape(seg['title'])}</title>"
        f'<rect class="attempt{unfinished}" x="{x}" y="{bar_y}" width="{width}"'
        f' height="{bar}" rx="3"/>'
    )
    if seg["hatched"]:
        out += f'<rect class="hatch" x="{x}" y="{bar_y}" width="{width}" height="{bar}" rx="3"/>'
    if seg["label"]:
        out += (
            f'<text class="attempt-label" x="{x + width / 2}" y="{row["text_y"] - 1}"'
            f' text-anchor="middle">{escape(seg["label"])}</text>'
        )
    return out + "</g>"


def row_svg(row: dict[str, Any], tl: dict[str, Any]) -> str:
    """One step's `<g class="timeline-bar">`: lane, label, band, attempts, tail, status."""
    classes = "timeline-bar s-" + str(escape(row["status"]))
    classes += " critical" if row["critical"] else ""
    classes += " slow" if row["slow"] else ""
    sid = escape(row["id"])
    y, bar_y, text_y, bar = row["y"], row["bar_y"], row["text_y"], tl["bar"]
    parts = [
        f'<g class="{classes}" data-step="{sid}" data-status="{escape(row["status"])}">',
        f"<title>{sid}: {escape(row['status_text'])}</title>",
        f'<rect class="lane{" stripe" if row["stripe"] else ""}" x="0" y="{y}"'
        f' width="{tl["width"]}" height="{tl["row"]}"/>',
        f'<text class="step-label" x="{tl["label_x"]}" y="{text_y}">'
        f"{escape(row['short_id'])}</text>",
    ]
    if typical := row["typical"]:
        parts.append(
            f'<rect class="typical" x="{typical["x"]}" y="{y + 1}" width="{typical["width"]}"'
            f' height="{tl["row"] - 2}"><title>{escape(typical["title"])}</title></rect>'
        )
    if row["not_run"]:
        x0, x1 = tl["track_x0"], tl["track_x1"]
        parts.append(
            f'<rect class="not-run" x="{x0}" y="{bar_y}" width="{x1 - x0}" height="{bar}" rx="3"/>'
            f'<text class="not-run-label" x="{x0 + 8}" y="{text_y - 1}">did not run</text>'
        )
    middle = bar_y + bar / 2
    previous: dict[str, Any] | None = None
    for seg in row["segments"]:
        if previous is not None and seg["x"] > previous["x"] + previous["width"]:
            parts.append(
                f'<line class="gap" x1="{previous["x"] + previous["width"]}" y1="{middle}"'
                f' x2="{seg["x"]}" y2="{middle}"/>'
            )
        parts.append(_segment(seg, row, tl))
        previous = seg
    if tail := row["tail"]:
        x, x2 = tail["x"], tail["x2"]
        parts.append(
            f"<g><title>{TAIL_TITLE}</title>"
            f'<line class="tail" x1="{x}" y1="{middle}" x2="{x2 - 6}" y2="{middle}"/>'
            f'<path class="tail-head" d="M{x2 - 8},{bar_y + 2} L{x2},{middle}'
            f' L{x2 - 8},{bar_y + bar - 2} Z"/></g>'
        )
    slow = " ▲" if row["slow"] else ""
    parts.append(
        f'<text class="status-label" x="{tl["status_x"]}" y="{text_y}">'
        f"{escape(row['status_text'])}{slow}</text></g>"
    )
    return "".join(parts)


def rows_svg(rows: Iterable[dict[str, Any]], tl: dict[str, Any]) -> Markup:
    """Every row, one per line, as markup the template inserts as is."""
    return Markup("\n".join(row_svg(row, tl) for row in rows))
