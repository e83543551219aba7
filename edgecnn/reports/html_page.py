"""One self-contained HTML page: the table with the front marked, the plots as base64 PNG
`<img>`s, the notes, the hosts and the versions. No scripts, no external files."""

from __future__ import annotations

import base64
from html import escape

from edgecnn.reports.formats import cells, footer_lines
from edgecnn.results import now_iso

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { text-align: left; background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.front td { font-weight: 600; background: #eef7ee; }
tr.failed td { color: #a00; }
td.notes { white-space: normal; max-width: 28em; }
img { max-width: 100%; margin: 1em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; font-size: 13px; }
dt { font-weight: 600; }
"""


def render_html(report, images: list[tuple[str, bytes]], plot_note: str | None = None) -> str:
    headers, body, right = cells(report)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>edgecnn compare</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>edgecnn compare</h1>",
           f"<p>{len(report.rows)} rows from {escape(', '.join(report.sources))}; baseline "
           f"{escape(report.baseline)}; made {escape(now_iso())}.</p>",
           "<table><thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for row, texts in zip(report.rows, body):
        css = "front" if row.front else ("failed" if row.failed else "")
        out.append(f'<tr class="{css}">' if css else "<tr>")
        for header, text, is_right in zip(headers, texts, right):
            kind = "num" if is_right else ("notes" if header == "notes" else "")
            out.append(f'<td class="{kind}">{escape(text)}</td>' if kind else f"<td>{escape(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table><ul>")
    out += [f"<li>{escape(line)}</li>" for line in footer_lines(report)]
    out.append("</ul>")
    if images or plot_note:
        out.append("<h2>Plots</h2>")
    if plot_note:
        out.append(f"<p>{escape(plot_note)}</p>")
    for title, png in images:
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{escape(title)}</figcaption></figure>")
    hosts = report.hosts()
    if hosts:
        out.append("<h2>Hosts</h2>")
        for label, host in hosts.items():
            out.append(f"<h3>{escape(label)}</h3><dl>")
            for key, value in host.items():
                if value not in (None, "", {}):
                    out.append(f"<dt>{escape(str(key))}</dt><dd>{escape(str(value))}</dd>")
            out.append("</dl>")
    out.append("<h2>Versions</h2><dl>")
    for tool, values in report.versions().items():
        out.append(f"<dt>{escape(tool)}</dt><dd>{escape(', '.join(values))}</dd>")
    out.append("</dl></body></html>")
    return "\n".join(out) + "\n"
