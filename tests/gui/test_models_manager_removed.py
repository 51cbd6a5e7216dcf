"""A `manager-deleted` event (an admin removed a Manager) takes the Manager and its workers out of the models."""

from __future__ import annotations

from app.models.farm_models import ManagersModel, WorkersModel
from app.models.store import ClientStore
from tests.gui.test_models_plain import NOW, worker


def manager(i: int) -> dict[str, object]:
    return {"id": i, "name": f"site-{i}", "status": "online", "last_seen": NOW, "created": NOW}


def test_a_removed_manager_goes_with_its_workers(qapp, qtmodeltester) -> None:
    store = ClientStore()
    workers, managers = WorkersModel(store), ManagersModel(store)
    store.apply("manager-updated", manager(1))
    store.apply("manager-updated", manager(2))
    store.apply("worker-updated", worker(1))
    store.apply("worker-updated", {**worker(2), "manager_id": 2})
    store.apply("worker-updated", worker(3))
    store.apply("manager-deleted", {"id": 1, "name": "site-1"})
    workers.flush()
    managers.flush()
    assert [m.id for m in store.managers.values()] == [2]
    assert [w.id for w in store.workers.values()] == ["w2"]
    assert managers.rowCount() == 1 and workers.rowCount() == 1
    store.apply("manager-deleted", {"id": 1, "name": "site-1"})  # again (a replayed event): harmless
    assert len(store.managers) == 1
    qtmodeltester.check(workers)
    qtmodeltester.check(managers)
