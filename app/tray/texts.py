"""What the tray icon shows: one image file per state and the tooltip / state-line text."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from app.tray.policy import TrayState

ICON_DIR = Path(__file__).resolve().parent.parent.parent / "resources" / "icons" / "tray"


def icon_path(state: TrayState) -> Path:
    return ICON_DIR / f"{state.value}.png"


def state_text(
    state: TrayState,
    *,
    task: dict[str, Any] | None = None,
    paused_until: datetime | None = None,
    next_start: datetime | None = None,
    away_minutes: float = 10.0,
    manager_url: str = "",
    stopped_why: str = "",
) -> str:
    if state == TrayState.RENDERING and task:
        done, total = task.get("steps_done"), task.get("steps_total")
        progress = f" ({done}/{total})" if total else ""
        return f"Rendering {task.get('job_name', '')}: {task.get('name', '')}{progress}"
    if state == TrayState.RENDERING:
        return "Rendering"
    if state == TrayState.WAITING:
        return "Waiting for work"
    if state == TrayState.PAUSED:
        return f"Paused by you until {paused_until:%a %H:%M}" if paused_until else "Paused by you"
    if state == TrayState.OUTSIDE_HOURS:
        return (
            f"Outside your rendering hours (next start {next_start:%a %H:%M})"
            if next_start
            else ("Outside your rendering hours")
        )
    if state == TrayState.USER_ACTIVE:
        return f"You are using this computer (resumes after {away_minutes:g} minutes away)"
    if state == TrayState.ASLEEP:
        return "Asleep (set by the wrangler)"
    if state == TrayState.UNREACHABLE:
        return f"Cannot reach the Manager{f' at {manager_url}' if manager_url else ''} (retrying)"
    return f"Stopped{f': {stopped_why}' if stopped_why else ''}"
