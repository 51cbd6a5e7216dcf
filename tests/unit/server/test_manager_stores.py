"""One Manager per Manager token (services/server/api/manager_stores.py): a new store takes the token over, the
store it was taken from is refused while the new one calls, and may take it back once that one is silent."""

from __future__ import annotations

import time
import uuid

import pytest

from services.server.api.manager_stores import ManagerStores
from services.server.store.errors import Conflict


def test_the_store_a_token_was_taken_from_is_refused_while_the_new_one_calls() -> None:
    stores = ManagerStores(bound=0.5)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    stores.check(1, "m1", first)
    stores.check(1, "m1", first)
    stores.check(1, "m1", second)  # a fresh store (another machine, --fresh-store): it goes on at once
    with pytest.raises(Conflict) as refused:
        stores.check(1, "m1", first)
    assert refused.value.errors == [("token", refused.value.message)]
    assert "another Manager took over the token of Manager 'm1'" in refused.value.message
    stores.check(1, "m1", second)
    stores.check(2, "m2", first)  # another Manager's token: its own
    time.sleep(0.6)  # the new one went silent for a lease: the earlier one may take the token back
    stores.check(1, "m1", first)
    with pytest.raises(Conflict):
        stores.check(1, "m1", second)


@pytest.mark.parametrize("store", [None, "", "not-hex", "A" * 32])
def test_a_manager_that_sends_no_store_id_is_not_told_apart(store: str | None) -> None:
    stores = ManagerStores(bound=60)
    stores.check(1, "m1", uuid.uuid4().hex)
    stores.check(1, "m1", store)  # an older Manager, or a header no Manager sends: as before
