"""OpenJD host requirements at the Manager (real SQLite): only a worker that meets a step's requirements gets
its task, a task no worker meets says so and leaves room in the prefetch, capabilities survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.manager.core import ManagerCore
from services.manager.store.db import connect
from services.protocol.host_requirements import HostCapabilities
from services.protocol.jobs import Command
from services.protocol.platforms import Platform
from services.protocol.worker_api import SignOnRequest
from tests.unit.manager.test_core import claimed, make_core, sent, take

TEMPLATE = {"steps": [
    {"name": "Any"},
    {"name": "Big", "hostRequirements": {"amounts": [{"name": "amount.worker.vcpu", "min": 16}],
                                         "attributes": [{"name": "attr.worker.os.family", "anyOf": ["linux"]}]}},
]}  # fmt: skip


def openjd(task_id: int, step: str, **kw: Any) -> Any:
    command = Command(name="openjd-task", parameters={"template": TEMPLATE, "step": step})
    return claimed(task_id, type="openjd", commands=[command], index=task_id, **kw)


def sign_on(core: ManagerCore, name: str, vcpu: float | None) -> Any:
    wid, _ = core.workers.register("s", "s", name, "linux")
    w = core.workers[wid]
    caps = None if vcpu is None else HostCapabilities(
        attributes={"attr.worker.os.family": ["linux"]}, amounts={"amount.worker.vcpu": vcpu}
    )  # fmt: skip
    core.sign_on(w, SignOnRequest(name=name, platform=Platform.LINUX, task_types=["openjd"], capabilities=caps))
    return w


def test_only_a_worker_that_meets_the_step_gets_its_task(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    small = sign_on(core, "small", 4)
    old = sign_on(core, "old", None)  # an older worker: only its OS family is known
    core.add_claimed([openjd(1, "Big"), openjd(2, "Any")])
    said = {u.task_id: u.activity for u in sent(core)}
    assert said[1] is not None and "amount.worker.vcpu" in said[1] and "small: amount.worker.vcpu: 4" in said[1]
    assert 2 not in said, "a task without requirements is not commented on"
    assert take(core, small) == 2
    assert take(core, old) is None  # task 1 needs 16 vCPUs: neither may run it
    # the waiting task does not fill the prefetch: the Manager still asks for work for the idle worker
    req = core.claim_request()
    assert req is not None and req.capacity >= 1

    big = sign_on(core, "big", 32)
    assert not core.tasks[1].unmeetable
    assert take(core, big) == 1

    # a restarted Manager still knows what each worker offers
    core.conn.close()
    again = ManagerCore(connect(tmp_path / "m.sqlite"), core.config)
    caps = again.workers[big.id].capabilities
    assert caps is not None and caps.amounts["amount.worker.vcpu"] == 32
