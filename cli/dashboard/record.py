"""A recorded session: the lanes and the timeline of one moment of the page, as one
self-contained HTML file (the page's own stylesheet and lanes.js inlined, the data as JSON):
it opens in any browser with no network and no server, for the projector after the class.
Written by `workerlab dashboard --record FILE` when the dashboard stops, and served by the
page's "save as HTML" link (GET /api/record)."""

from __future__ import annotations

import html
import json
import time
from importlib import resources
from typing import Any


def _static(name: str) -> str:
    return (resources.files("workerlab.cli.dashboard") / "static" / name).read_text()


def _clock(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_seconds))


def _entry(e: dict[str, Any]) -> str:
    classes = f"lvl-{e['level']}" + (" warn" if e.get("warning") else "")
    healed = f" <span class=heal>healed in {e['heal_s']}s</span>" if e.get("heal_s") else ""
    wc = f"<b>wc/{html.escape(e['wc'])}</b> " if e.get("wc") else ""
    warned = "<span class=warn-mark>warning </span>" if e.get("warning") else ""
    return (
        f'<li class="{classes}" data-level="{html.escape(e["level"])}">'
        f"<span class=lvl>{html.escape(e['level'])}</span>{warned}"
        f"<span class=dim>{time.strftime('%H:%M:%S', time.localtime(e['at']))}</span> "
        f"{wc}{html.escape(e['message'])}{healed}</li>"
    )


def record_html(view: dict[str, Any], context: str) -> str:
    lanes = view["lanes"]
    data = json.dumps({"lanes": lanes, "timeline": view["timeline"]})
    data = data.replace("</", "<\\/")  # the JSON cannot end the <script> it sits in
    span = f"{_clock(lanes['from'])} to {_clock(lanes['to'])}"
    entries = "\n".join(_entry(e) for e in view["timeline"] if e["at"] >= lanes["from"])
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>workerlab record: {html.escape(view["namespace"])}, {span}</title>
<style>
{_static("style.css")}
</style>
</head>
<body>
<header>
  <h1>workerlab <span class="dim">record</span></h1>
  <span class="dim">namespace <b>{html.escape(view["namespace"])}</b> · context
  {html.escape(context)} · recorded {span}</span>
</header>
<section id="time"><div id="lanes"></div></section>
<section id="recorded-timeline"><h2>Who acted</h2><ol class="timeline">
{entries}
</ol></section>
<script>
{_static("lanes.js")}
const RECORD = {data};
drawAllLanes(document.getElementById("lanes"), RECORD);
</script>
</body>
</html>
"""
