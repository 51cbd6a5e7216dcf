"""For `make screenshots`: a day of one worker's utilisation, replayed into a fresh farm's Server.

A farm started for the screenshots is a minute old, so its graphs would have no past to show. This sends a
day of samples of one extra worker ("render-07") through the Server's real Manager link, as a Manager named
"replay" would have reported them over the day (one report per five minutes: nights rendering, days light).
The docs say the picture's past day is replayed. Plain HTTP: nothing here reaches into the Server.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import httpx

from services.protocol import API_PREFIX

WORKER_ID = "replayed-render-07"
STEP = timedelta(minutes=5)


def load_at(t: datetime) -> tuple[float, float, float]:
    """CPU, memory and GPU (%) of a render node at time t: busy at night, lighter by day, with some texture."""
    hour = t.hour + t.minute / 60
    night = 0.5 + 0.5 * math.cos((hour - 2.0) / 24 * 2 * math.pi)  # 1 at 02:00, 0 at 14:00
    wobble = math.sin(t.timestamp() / 900) * 6 + math.sin(t.timestamp() / 170) * 4
    cpu = min(100.0, max(2.0, 15 + 80 * night + wobble))
    memory = min(95.0, max(10.0, 35 + 35 * night + wobble / 2))
    gpu = min(100.0, max(0.0, 5 + 85 * night - wobble))
    return round(cpu, 1), round(memory, 1), round(gpu, 1)


async def replay_day(server_url: str, admin_token: str, hours: float = 24.0) -> str:
    """Report a day of samples of one worker through a Manager link of its own; returns the worker's id."""
    base = server_url.rstrip("/") + API_PREFIX
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/managers", json={"name": "replay"}, headers={"Authorization": f"Bearer {admin_token}"})
        r.raise_for_status()
        link = {"Authorization": f"Bearer {r.json()['token']}"}
        now = datetime.now(UTC)
        t = now - timedelta(hours=hours)
        seq = 0
        while t <= now:
            cpu, memory, gpu = load_at(t)
            seq += 1
            report = {
                "id": WORKER_ID, "name": "render-07", "platform": "linux", "task_types": ["blender", "ffmpeg"],
                "tags": ["gpu"], "status": "awake", "last_seen": t.isoformat(),
                "utilisation": {"time": t.isoformat(), "cpu_percent": cpu, "memory_percent": memory,
                                "memory_used_mb": memory * 640, "gpu_percent": gpu},
            }  # fmt: skip
            r = await http.post("/manager/updates", json={"seq": seq, "workers": [report]}, headers=link)
            r.raise_for_status()
            t += STEP
    return WORKER_ID
