"""Utilisation samples for heartbeats: CPU %, memory, load average, and GPU load where `nvidia-smi` exists."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime

import psutil

from services.localfarm.lifeline import program_hook
from services.protocol.farm import Utilisation


class Sampler:
    """Each sample measures the CPU since the previous one, so the first call primes the counter."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)
        self._nvidia_smi = shutil.which("nvidia-smi")

    async def sample(self) -> Utilisation:
        mem = psutil.virtual_memory()
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows has no load average
            load = 0.0
        return Utilisation(
            time=datetime.now(UTC),
            cpu_percent=min(100.0, psutil.cpu_percent(interval=None)),
            memory_percent=min(100.0, mem.percent),
            memory_used_mb=(mem.total - mem.available) / 1_048_576,
            load_1m=max(0.0, load),
            gpu_percent=await self._gpu_percent(),
        )

    async def _gpu_percent(self) -> float | None:
        if self._nvidia_smi is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                self._nvidia_smi,
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                preexec_fn=program_hook(),  # dies with the worker
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 2.0)
            values = [float(v) for v in out.decode().split()]
        except (OSError, ValueError, TimeoutError):
            # a broken driver must not break heartbeats; stop asking
            self._nvidia_smi = None
            return None
        return min(100.0, sum(values) / len(values)) if values else None
