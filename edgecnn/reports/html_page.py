"""One self-contained HTML page: the table, one section of rows per model and input, the
plots as base64 PNG `<img>`s, the notes, the hosts and the versions. No external files.

- The table scrolls inside its own box when it is wider than the window; the page itself
  never runs off the right edge. The header stays in view while the rows scroll.
- Each model (and input) is one `<tbody>` under a header row naming it; the model and
  input columns are therefore left out of the page's table.
- A click on a column header sorts the rows of every model by that column (again: the
  other way); numbers sort as numbers, empty cells last. A small inline script does it;
  without scripts the page reads the same, unsorted.
- The plots are the PNGs of `edgecnn compare --plot`, one per panel, at their own size
  (scrolling in their box if the window is narrower), with an image map: hovering over a
  point shows every row at that place, with its numbers.
"""

from __future__ import annotations

import base64
from html import escape

from edgecnn.reports.formats import cells, footer_lines
from edgecnn.reports.join import input_label
from edgecnn.results import now_iso

HIDDEN_IN_PAGE = ("model", "input")  # said by each model's header row

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.table-box { max-width: 100%; overflow: auto; max-height: 80vh; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { padding: 3px 7px; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
thead th { text-align: left; background: #f3f3f3; position: sticky; top: 0; z-index: 1; cursor: pointer;
           user-select: none; }
thead th[data-type="num"] { text-align: right; }
thead th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 9px; }
thead th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 9px; }
tr.group th { text-align: left; background: #e6ecf5; font-size: 13px; padding-top: 6px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.front td { font-weight: 600; background: #eef7ee; }
tr.failed td { color: #a00; }
td.notes { white-space: normal; min-width: 14em; max-width: 26em; }
.plot-box { max-width: 100%; overflow-x: auto; }
.plot-box img { max-width: none; display: block; }
figure { margin: 1em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; font-size: 13px; }
dt { font-weight: 600; }
"""

# Sorts the rows of each <tbody> (one per model) by the clicked column; keeps the group header first.
_SCRIPT = """
(function () {
  var table = document.getElementById("compare");
  if (!table) { return; }
  var heads = table.tHead.rows[0].cells;
  function key(cell, numeric) {
    var text = cell ? cell.textContent.trim() : "";
    if (!numeric) { return text.toLowerCase(); }
    var value = parseFloat(text.replace(/[^0-9eE+.\\-]/g, ""));
    return isNaN(value) ? null : value;
  }
  function sortBy(index) {
    var head = heads[index];
    var numeric = head.getAttribute("data-type") === "num";
    var up = head.getAttribute("aria-sort") !== "ascending";
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    head.setAttribute("aria-sort", up ? "ascending" : "descending");
    var bodies = table.tBodies;
    for (var b = 0; b < bodies.length; b++) {
      var rows = Array.prototype.filter.call(bodies[b].rows, function (r) { return !r.classList.contains("group"); });
      rows.sort(function (r, s) {
        var x = key(r.cells[index], numeric), y = key(s.cells[index], numeric);
        if (x === y) { return 0; }
        if (x === null || x === "") { return 1; }
        if (y === null || y === "") { return -1; }
        return (x < y ? -1 : 1) * (up ? 1 : -1);
      });
      rows.forEach(function (r) { bodies[b].appendChild(r); });
    }
  }
  for (var i = 0; i < heads.length; i++) {
    (function (index) {
      heads[index].addEventListener("click", function () { sortBy(index); });
      heads[index].setAttribute("title", "sort by " + heads[index].textContent.trim());
    })(i);
  }
})();
"""


def _groups(report, body):
    """(header text, [(row, texts)]) per model and input, in the report's order."""
    groups: list[tuple[str, list]] = []
    last = None
    for row, texts in zip(report.rows, body):
        key = (row.model, input_label(row.facts))
        if key != last:
            groups.append((" ".join(k for k in key if k), []))
            last = key
        groups[-1][1].append((row, texts))
    return groups


def _image(index: int, image) -> list[str]:
    """A figure: the PNG at its own size, and an image map with a hover title per point."""
    if isinstance(image, tuple):  # (title, png) without point positions
        title, png = image
        width = height = None
        points = ()
    else:
        title, png, width, height, points = image.title, image.png, image.width, image.height, image.points
    data = base64.b64encode(png).decode("ascii")
    size = f' width="{width}" height="{height}"' if width and height else ""
    usemap = f' usemap="#plot-{index}"' if points else ""
    out = [
        f'<figure><div class="plot-box"><img alt="{escape(title)}"{size}{usemap} src="data:image/png;base64,{data}">'
    ]
    if points:
        out.append(f'<map name="plot-{index}">')
        for point in points:
            text = escape(point.title)
            out.append(f'<area shape="circle" coords="{point.x:.0f},{point.y:.0f},7" title="{text}" alt="{text}">')
        out.append("</map>")
    out.append(
        f"</div><figcaption>{escape(title)} (hover over a point for its rows)</figcaption></figure>"
        if points
        else f"</div><figcaption>{escape(title)}</figcaption></figure>"
    )
    return out


def render_html(report, images: list, plot_note: str | None = None) -> str:
    """The page; `images` are `plots.PanelImage`s (or (title, PNG) pairs, without hover titles)."""
    headers, body, right = cells(report)
    keep = [i for i, h in enumerate(headers) if h not in HIDDEN_IN_PAGE]
    headers = [headers[i] for i in keep]
    right = [right[i] for i in keep]
    body = [[texts[i] for i in keep] for texts in body]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>edgecnn compare</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>edgecnn compare</h1>",
        f"<p>{len(report.rows)} rows from {escape(', '.join(report.sources))}; baseline "
        f"{escape(report.baseline)}; made {escape(now_iso())}. Click a column header to sort "
        "each model's rows by it.</p>",
        '<div class="table-box"><table id="compare"><thead><tr>',
    ]
    out += [
        f'<th data-type="num">{escape(h)}</th>' if is_right else f"<th>{escape(h)}</th>"
        for h, is_right in zip(headers, right)
    ]
    out.append("</tr></thead>")
    for name, members in _groups(report, body):
        on_front = sum(1 for row, _ in members if row.front)
        count = f"{len(members)} row{'s' if len(members) != 1 else ''}"
        out.append(
            f'<tbody><tr class="group"><th colspan="{len(headers)}">{escape(name)} '
            f"<small>({count}, {on_front} on the front)</small></th></tr>"
        )
        for row, texts in members:
            css = "front" if row.front else ("failed" if row.failed else "")
            out.append(f'<tr class="{css}">' if css else "<tr>")
            for header, text, is_right in zip(headers, texts, right):
                kind = "num" if is_right else ("notes" if header == "notes" else "")
                out.append(f'<td class="{kind}">{escape(text)}</td>' if kind else f"<td>{escape(text)}</td>")
            out.append("</tr>")
        out.append("</tbody>")
    out.append("</table></div><ul>")
    out += [f"<li>{escape(line)}</li>" for line in footer_lines(report)]
    out.append("</ul>")
    if images or plot_note:
        out.append("<h2>Plots</h2>")
    if plot_note:
        out.append(f"<p>{escape(plot_note)}</p>")
    for index, image in enumerate(images):
        out += _image(index, image)
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
    out.append(f"</dl><script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
