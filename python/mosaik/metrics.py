"""A network's metrics for Prometheus, through `prometheus_client`.

``mosaik.metrics.register(net)`` adds a collector to a registry (the global
one by default), so an application that serves ``/metrics`` with
`prometheus_client` shows mosaik's series beside its own. `mosaik node
--metrics HOST:PORT` serves them itself (with ``/status`` and ``/healthz``).
Needs the extra ``metrics`` (``pip install '.[metrics]'`` from a checkout,
or the wheel's path followed by ``[metrics]``).

Names are the ones of `Network.metrics` and `Group.metrics` with ``.`` as
``_`` (counters get Prometheus' ``_total``), labelled ``network`` (the
network id) and, for a group's series, ``group`` (the group id). Besides
those counters and gauges, each group has:

- ``mosaik_groups_raft_has_leader``, ``mosaik_groups_raft_is_leader``,
  ``mosaik_groups_online`` (1 or 0), ``mosaik_groups_raft_round`` (the
  election round), ``mosaik_groups_applied`` (the index applied here) and
  ``mosaik_groups_machine_version`` (the machine version the group runs);
- histograms ``mosaik_groups_commit_seconds`` (a batch of executed
  commands from proposal to commit and application here),
  ``mosaik_groups_apply_seconds`` (one batch of committed commands through
  the state machine), ``mosaik_groups_snapshot_seconds`` and
  ``mosaik_groups_snapshot_bytes`` (the machine's ``snapshot()``), recorded
  from the first collection on, and ``mosaik_groups_store_sync_seconds``
  (the disk store's syncs, counted from the start).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .group import Group
    from .network import Network

# The series that go up and down; every other one only counts up.
GAUGES = frozenset(
    {
        "mosaik.discovery.catalog.size",
        "mosaik.groups.active",
        "mosaik.groups.bonds.active",
        "mosaik.groups.proposals.pending",
        "mosaik.groups.raft.committed",
        "mosaik.groups.raft.committee.voters",
        "mosaik.net.connections.pending",
    }
)
"""The metric names exported as Prometheus gauges (they go up and down);
every other name of `Network.metrics` and `Group.metrics` is a counter."""
# The series `_status_of` adds are gauges too.
_STATUS = (
    "mosaik.groups.raft.has_leader",
    "mosaik.groups.raft.is_leader",
    "mosaik.groups.online",
    "mosaik.groups.raft.round",
    "mosaik.groups.applied",
    "mosaik.groups.machine.version",
)
# Refused bond handshakes: counted by groups, and by the network for those
# refused before they reached a group.
_REFUSED = "mosaik.groups.bonds.rejected"
_LABELLED = re.compile(r"^(?P<name>[^{]+)\{(?P<labels>[^}]*)\}$")
# Labels as the native side writes them (``reason=timeout``) or quoted.
_LABEL = re.compile(r'(\w+)="?([^",]*)"?')
# Seconds from 100 µs (one command in one process) to 10 s (a slow disk
# behind an election).
_COMMIT_BUCKETS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01)
_COMMIT_BUCKETS += (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One round of an election is ``term >> 32`` (a term is a ballot).
_ROUND_SHIFT = 32


def prometheus_name(name: str) -> str:
    """``mosaik.groups.raft.committed`` as ``mosaik_groups_raft_committed``."""
    return name.replace(".", "_")


def _split(sample: str) -> tuple[str, dict[str, str]]:
    """A sample's name and the labels written into it (``name{k="v"}``)."""
    found = _LABELLED.match(sample)
    if found is None:
        return sample, {}
    return found["name"], dict(_LABEL.findall(found["labels"]))


class _Timings:
    """The histograms one group's apply thread records into."""

    __slots__ = ("apply", "commit", "snapshot_bytes", "snapshot_seconds")

    def __init__(self, histograms: _Histograms, network: str, group: str) -> None:
        self.apply = histograms.apply.labels(network, group)
        self.commit = histograms.commit.labels(network, group)
        self.snapshot_seconds = histograms.snapshot_seconds.labels(network, group)
        self.snapshot_bytes = histograms.snapshot_bytes.labels(network, group)

    def applied(self, seconds: float) -> None:
        self.apply.observe(seconds)

    def snapshotted(self, seconds: float, size: int) -> None:
        self.snapshot_seconds.observe(seconds)
        self.snapshot_bytes.observe(size)


class _Histograms:
    """The histograms of one registry, labelled by network and group."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("network", "group")
        self.apply = Histogram(
            "mosaik_groups_apply_seconds",
            "Seconds one batch of committed commands took through the state machine.",
            labels,
            registry=registry,
        )
        self.commit = Histogram(
            "mosaik_groups_commit_seconds",
            "Seconds from proposing a batch of commands on this node to its "
            "commit and application here.",
            labels,
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        self.snapshot_seconds = Histogram(
            "mosaik_groups_snapshot_seconds",
            "Seconds the state machine's snapshot() took.",
            labels,
            registry=registry,
        )
        self.snapshot_bytes = Histogram(
            "mosaik_groups_snapshot_bytes",
            "Bytes of the state machine's snapshots.",
            labels,
            buckets=[1 << k for k in range(10, 34, 2)],
            registry=registry,
        )


class NetworkCollector(Collector):
    """Collects one network's series and those of every group it has joined."""

    def __init__(self, net: Network, histograms: _Histograms) -> None:
        self._net = net
        self._histograms = histograms

    def collect(self) -> Iterator[Metric]:
        """The series as they are now (called by the registry at each
        scrape); nothing once the network is closed."""
        net = self._net
        if net.closed:
            return
        network = str(net.network_id)
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

        def add(name: str, value: float, labels: dict[str, str]) -> None:
            base, written = _split(name)
            labels = {**labels, **written}
            family = families.get(base)
            if family is None:
                title, keys = prometheus_name(base), sorted(labels)
                family = (
                    GaugeMetricFamily(title, f"mosaik {base}", labels=keys)
                    if base in GAUGES or base.startswith(_STATUS)
                    else CounterMetricFamily(title, f"mosaik {base}", labels=keys)
                )
                families[base] = family
            family.add_metric([labels[k] for k in sorted(labels)], value)

        syncs = HistogramMetricFamily(
            "mosaik_groups_store_sync_seconds",
            "Seconds one sync of the disk log store took (fdatasync of the "
            "segments and meta file, fsync of the directory).",
            labels=["network", "group"],
        )
        by_group: dict[str, float] = {}
        for group in net.groups().joined():
            labels = {"network": network, "group": str(group.id)}
            for name, value in group.metrics().items():
                add(name, value, labels)
                by_group[name] = by_group.get(name, 0.0) + value
            for name, value in _status_of(group).items():
                add(name, value, labels)
            _add_syncs(syncs, group, [network, str(group.id)])
            replica = group._replica
            if replica.timings is None:
                timings = _Timings(self._histograms, network, str(group.id))
                replica.timings = timings
                group._stats.commit_seconds = timings.commit.observe
        # The network's own series. Where groups have series of the same
        # name, the network's value is their total plus what no group
        # counted (a handshake refused before it reached a group): that
        # rest is shown with ``group=""``, so that sums stay right.
        for name, value in net.metrics().items():
            base = _split(name)[0]
            if base not in families:
                add(name, value, {"network": network})
            elif base == _REFUSED and value > by_group.get(name, 0.0):
                add(name, value - by_group.get(name, 0.0), {"network": network, "group": ""})
        yield from families.values()
        if syncs.samples:
            yield syncs


def _add_syncs(family: HistogramMetricFamily, group: Group[Any], labels: list[str]) -> None:
    """The sync times of ``group``'s disk store, if it has one."""
    times = group._native.sync_times()
    if times is None:
        return
    bounds, counts, _, total = times
    cumulative, buckets = 0, []
    for bound, count in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        cumulative += count
        buckets.append((bound, float(cumulative)))
    family.add_metric(labels, buckets, total)


def _status_of(group: Group[Any]) -> dict[str, float]:
    leader = group.leader()
    return {
        "mosaik.groups.raft.has_leader": float(leader is not None),
        "mosaik.groups.raft.is_leader": float(group.is_leader()),
        "mosaik.groups.online": float(group.is_online()),
        "mosaik.groups.raft.round": float(group.log_position().term >> _ROUND_SHIFT),
        "mosaik.groups.applied": float(group._replica.applied),
        "mosaik.groups.machine.version": float(group.machine_version),
    }


_HISTOGRAMS: weakref.WeakKeyDictionary[CollectorRegistry, _Histograms] = weakref.WeakKeyDictionary()


def register(net: Network, registry: CollectorRegistry | None = None) -> NetworkCollector:
    """Adds ``net``'s series to ``registry`` (default: `prometheus_client`'s
    global one) and returns the collector (``registry.unregister`` takes
    it away).

    Example:
        ```python
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        mosaik.metrics.register(net, registry)
        print(generate_latest(registry).decode())
        ```
    """
    registry = REGISTRY if registry is None else registry
    histograms = _HISTOGRAMS.get(registry)
    if histograms is None:
        histograms = _HISTOGRAMS[registry] = _Histograms(registry)
    collector = NetworkCollector(net, histograms)
    registry.register(collector)
    return collector


__all__ = ["GAUGES", "NetworkCollector", "prometheus_name", "register"]
