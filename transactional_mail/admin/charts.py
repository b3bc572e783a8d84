"""Charts as inline SVG rendered on the server: no JavaScript, no build step, no CDN.

Each function returns markup safe to put in a template; every text in it (labels,
legends, tooltips) is escaped. The charts use the admin's CSS variables where a colour
follows the theme (text, lines), and fixed colours per series, so they work in the dark
theme too. Each mark has a ``<title>`` (the browser's tooltip, read by screen readers).
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

#: Colours of the series, in order (colour-blind safe: the Okabe-Ito palette).
PALETTE = ("#0072B2", "#009E73", "#E69F00", "#CC79A7", "#D55E00", "#56B4E9", "#000000")

_WIDTH, _HEIGHT = 720, 220
#: Up to this many days, each day is a dot with its tooltip; beyond, only the lines.
MAX_POINTS = 100
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28


def _format(template: str, *args) -> SafeString:
    """``format_html`` with floats rounded to one decimal (coordinates)."""
    return format_html(template, *(_coordinates([arg])[0] if isinstance(arg, float) else arg
                                   for arg in args))


def _coordinates(values) -> tuple[str, ...]:
    return tuple(f"{value:.1f}" for value in values)


def _join(parts: list[SafeString]) -> SafeString:
    """Concatenate parts that ``format_html`` already escaped."""
    return mark_safe("".join(parts))


def _svg(width: int, height: int, label: str, body: SafeString) -> SafeString:
    return _format(
        '<svg class="tm-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="100%" style="max-width:{}px" xmlns="http://www.w3.org/2000/svg" '
        'font-family="sans-serif" font-size="11">{}</svg>',
        label, width, height, width, body,
    )


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(labels: list[str], series: dict[str, list[float]], label: str) -> SafeString:
    """One line per series over ``labels`` (days), with a y axis from 0 and a legend."""
    if not labels:
        return SafeString("")
    top = _nice_max(max((max(values, default=0) for values in series.values()), default=0))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def point(index: int, value: float) -> tuple[float, float]:
        return _LEFT + index * step, _TOP + plot_h - plot_h * value / top

    parts = [_axes(top, plot_w, plot_h)]
    for index in sorted({0, len(labels) - 1, *range(0, len(labels), max(len(labels) // 6, 1))}):
        x = _LEFT + index * step
        # The first and last labels align inwards, so that they are not cut off.
        anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
        parts.append(_format(
            '<text x="{}" y="{}" text-anchor="{}" fill="currentColor">{}</text>',
            x, _HEIGHT - 8, anchor, labels[index]))
    for (name, values), colour in zip(series.items(), PALETTE, strict=False):
        points = " ".join("{:.1f},{:.1f}".format(*point(i, v)) for i, v in enumerate(values))
        parts.append(_format(
            '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>', colour, points))
        if len(labels) > MAX_POINTS:
            continue  # a dot per day over years would weigh more than it tells
        parts.append(format_html_join("", (
            '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{} {}: {}</title>'
            "</circle>"), ((*_coordinates(point(i, v)), colour, labels[i], name, _number(v))
                           for i, v in enumerate(values))))
    parts.append(_legend(list(series)))
    return _svg(_WIDTH, _HEIGHT + 18, label, _join(parts))


def _axes(top: float, plot_w: float, plot_h: float) -> SafeString:
    lines = []
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h - plot_h * fraction
        lines.append(_format(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" '
            'stroke-opacity="0.2"/><text x="{}" y="{}" text-anchor="end" '
            'fill="currentColor">{}</text>',
            _LEFT, _LEFT + plot_w, y, y, _LEFT - 6, y + 4, _number(top * fraction)))
    return _join(lines)


def _legend(names: list[str]) -> SafeString:
    return format_html_join("", (
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="{}" fill="currentColor">{}</text>'), (
        (_LEFT + 110 * i, _HEIGHT + 2, colour, _LEFT + 110 * i + 14, _HEIGHT + 11, name)
        for i, (name, colour) in enumerate(zip(names, PALETTE, strict=False))))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def rate_bars(rows: list[tuple[str, float | None, float | None, float | None]],
              label: str) -> SafeString:
    """Horizontal bars of rates (0 to 1), one per row ``(name, rate, low, high)``, with
    the confidence interval as a whisker when ``low`` and ``high`` are given."""
    if not rows:
        return SafeString("")
    bar_h, left, width = 22, 170, _WIDTH - 170 - 70
    parts = []
    for index, (name, rate, low, high) in enumerate(rows):
        y = 6 + index * bar_h
        colour = PALETTE[index % len(PALETTE)]
        parts.append(_format(
            '<text x="{}" y="{}" text-anchor="end" fill="currentColor">{}</text>',
            left - 8, y + 13, name))
        if rate is None:
            parts.append(_format(
                '<text x="{}" y="{}" fill="currentColor">—</text>', left, y + 13))
            continue
        text = f"{rate:.1%}"
        if low is not None and high is not None:
            text += f" (95 % CI {low:.1%}–{high:.1%})"
            parts.append(_format(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" '
                'stroke-width="1.5"/>', left + width * low, left + width * high, y + 9, y + 9))
        parts.append(_format(
            '<rect x="{}" y="{}" width="{}" height="16" fill="{}" fill-opacity="0.8">'
            "<title>{}: {}</title></rect>",
            left, y + 1, max(width * rate, 1), colour, name, text))
        parts.append(_format(
            '<text x="{}" y="{}" fill="currentColor">{}</text>',
            left + width * (high if high is not None else rate) + 6, y + 13, f"{rate:.1%}"))
    height = 12 + len(rows) * bar_h
    return _svg(_WIDTH, height, label, _join(parts))


def histogram(labels: list[str], counts: list[int], label: str) -> SafeString:
    """Vertical bars of ``counts`` over ``labels`` (the time-to-delivery buckets)."""
    if not any(counts):
        return SafeString("")
    top = _nice_max(max(counts))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / len(counts)
    parts = [_axes(top, plot_w, plot_h)]
    for index, (name, count) in enumerate(zip(labels, counts, strict=True)):
        height = plot_h * count / top
        x = _LEFT + index * slot
        parts.append(_format(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
            "<title>{}: {}</title></rect>"
            '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
            x + 2, _TOP + plot_h - height, slot - 4, height, PALETTE[0], name, _number(count),
            x + slot / 2, _HEIGHT - 8, name))
    return _svg(_WIDTH, _HEIGHT, label, _join(parts))
