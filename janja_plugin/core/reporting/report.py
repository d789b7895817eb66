"""A single-file HTML report: headings, paragraphs, tables and inline SVG charts."""

import html
import os
import tempfile
from pathlib import Path

from ..staging import make_readable

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}.charts svg{margin:0 1em 1em 0}
.note{color:#555;font-size:0.9em}
.warning{color:#8a1c00;background:#fff3e0;border-left:4px solid #d84315;padding:4px 8px;font-weight:bold}"""


def _cell(value):
    """Floats as plain decimals with 4 significant figures (0.0000308, 84,360), never 3.08e-05."""
    if isinstance(value, float):
        from .units import number

        return number(value, 4)
    return html.escape(str(value))


class HtmlReport:
    def __init__(self, title):
        self.title = title
        self.parts = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text, level=2):
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text, css_class=None):
        cls = f' class="{css_class}"' if css_class else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, header, rows):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def charts(self, svgs):
        self.parts.append('<div class="charts">' + "".join(svgs) + "</div>")

    def html(self):
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(self.parts)}</body></html>"
        )

    def write(self, path):
        """Write atomically: the report appears only when complete."""
        write_text_atomic(path, self.html())


def write_text_atomic(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
