"""gc_tuning.settle_long_lived: what exists is frozen (garbage first collected), the young generation is larger.

Run in a child process: freezing the test session's own objects would change every later test.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.services import ROOT, child_env

CHILD = """
import gc, weakref
from services.protocol import gc_tuning

class Node:
    pass

kept = [Node() for _ in range(1000)]
a, b = Node(), Node()
a.other, b.other = b, a          # a cycle nothing refers to: garbage, not to be frozen
gone = weakref.ref(a)
del a, b
gc.disable()                     # no automatic collection may take the cycle before settle_long_lived does
gc_tuning.settle_long_lived()
gc.enable()
print(gone() is None)
print(gc.get_freeze_count() > 1000)
young = [Node() for _ in range(10)]
tracked = {id(o) for o in gc.get_objects()}  # the frozen objects are left out of every collection
print(not any(id(k) in tracked for k in kept), all(id(y) in tracked for y in young))
print(gc.get_threshold()[0])
"""


def test_settle_long_lived_freezes_what_lives_and_collects_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=child_env(), capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "True", "the garbage cycle was frozen instead of collected"
    assert out[1] == "True", "nothing was frozen"
    assert out[2] == "True True", "frozen objects are still walked by collections, or young ones are not"
    assert out[3] == "7000"
