"""Replicated collections: data structures and locks, each its own group.

Every collection is a group whose state machine this package provides, so
it has the guarantees of any group (see the docs' collections page):

- ``Type.writer(net, name)`` joins to read and write, ``Type.reader(net,
  name)`` to read only (the node never leads; writes raise
  `ReadOnlyError`). ``key=`` admits members (by default a key computed
  from the network id, the collection type and the name), ``consensus=``
  and ``storage=`` are as for any group. The `GroupId` covers the type,
  the name, the key and the consensus settings, so collections of one name
  and different types never bond.
- Local reads (``m.get(k)``, ``len(q)``, ...) answer at once from this node
  and see every write committed and applied here. ``await c.barrier()``
  makes the next ones linearizable.
- Writes return the version (log index) they committed at, applied here by
  then; ``await c.when().reaches(v)`` waits for a version on another node.
  Writes that hand back an item (``pop_*``, `Queue.get`) or an outcome
  (``compare_exchange``, a bounded `Queue.put`) carry a request id: retried
  after `mosaik.CommandUnknown` with the error's ``request_id``, they return
  the first outcome and change nothing again.
- Each collection snapshots itself, so its log stays bounded.
"""

from ._base import Collection, ReadOnlyError
from ._cell import Cell
from ._counter import Counter
from ._lock import Acquiring, Lease, Lock, lease_clock
from ._map import Map
from ._once import Once
from ._priority_queue import Entry, PriorityQueue
from ._queue import Queue
from ._set import Set
from ._vec import Vec

__all__ = [
    "Acquiring",
    "Cell",
    "Collection",
    "Counter",
    "Entry",
    "Lease",
    "Lock",
    "Map",
    "Once",
    "PriorityQueue",
    "Queue",
    "ReadOnlyError",
    "Set",
    "Vec",
    "lease_clock",
]
