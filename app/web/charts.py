"""Small charts drawn by the server as inline SVG: no script, no image request."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 320, 120, 22


def bars(values: list[tuple[str, int]], title: str, label_every: int = 2) -> Markup:
    """A bar chart of (label, value) pairs, labelled for screen readers by ``title`` and
    each bar's own <title>; the axis names every ``label_every``-th bar (the last one
    always), so labels never overlap on a phone. Negative values are drawn as zero-height
    bars."""
    top = max([v for _, v in values] + [1])
    n = max(len(values), 1)
    step = WIDTH / n
    width = step * 0.7
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + PAD}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(values):
        h = max(0, value) / top * (HEIGHT - 18)
        x = i * step + (step - width) / 2
        y = HEIGHT - h
        parts.append(
            f"<g><title>{escape(label)}: {value}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" rx="2"/>'
        )
        if value:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{value}</text>'
            )
        if (len(values) - 1 - i) % label_every == 0:
            last = i == len(values) - 1  # kept inside the picture: anchored at its right
            lx, anchor = (x + width, "end") if last else (x + width / 2, "middle")
            parts.append(
                f'<text class="axis" x="{lx:.1f}" y="{HEIGHT + 17}" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
