"""How the server shows what it holds to a person at a terminal.

    from probelink.server.render import render_report
    render_report(Console(), response.summary, response.report)

`report_text` renders one stored report; its small helpers (a status as a coloured
word, a time, a size) are shared by the client commands' tables.
"""

from probelink.server.render.diagnosis_html import render_diagnosis_html
from probelink.server.render.report_text import (
    format_bytes,
    format_time,
    kind_words,
    render_report,
    signature_text,
    signature_word,
    status_text,
    verdict_text,
)

__all__ = [
    "format_bytes",
    "format_time",
    "kind_words",
    "render_diagnosis_html",
    "render_report",
    "signature_text",
    "signature_word",
    "status_text",
    "verdict_text",
]
