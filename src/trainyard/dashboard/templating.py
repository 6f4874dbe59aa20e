"""Jinja2 templates of the dashboard's pages, the filters they use, and `page` (render one)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from trainyard.dashboard.queries import utc

HERE = Path(__file__).parent


def fmt_num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 10 ** digits else f"{value:.{digits}f}"
    return str(value)


def fmt_dt(value) -> str:
    if not isinstance(value, datetime):
        return "-" if value is None else str(value)
    return utc(value).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def to_json(value) -> str:
    """JSON for a <script type="application/json"> block (safe against </script>)."""
    text = json.dumps(value, default=lambda o: utc(o).isoformat() if isinstance(o, datetime) else str(o))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(num=fmt_num, dt=fmt_dt, duration=fmt_duration, json_block=to_json)
    env.globals["compact"] = lambda v: json.dumps(v, default=str, separators=(", ", ": "))
    return templates


def page(request: Request, template: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)
