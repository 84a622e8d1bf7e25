"""`mosaik.metrics`: a network's series in a `prometheus_client` registry,
read back with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from replication_helpers import counter_group

import mosaik.metrics
from conftest import bounded


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_a_registered_network_shows_its_groups_series_labelled() -> None:
    async with counter_group(3) as (nets, groups):
        registries = [CollectorRegistry() for _ in nets]
        collectors = [mosaik.metrics.register(n, r) for n, r in zip(nets, registries, strict=True)]
        for registry in registries:
            scrape(registry)  # the first collection starts the histograms
        for _ in range(20):
            await bounded(groups[0].execute({"add": 1}))
        await bounded(groups[0].barrier())
        leaders = 0.0
        for net, registry, group in zip(nets, registries, groups, strict=True):
            families = scrape(registry)
            (committed,) = families["mosaik_groups_raft_committed"].samples
            assert families["mosaik_groups_raft_committed"].type == "gauge"
            assert committed.labels == {"network": str(net.network_id), "group": str(group.id)}
            assert committed.value >= 20
            leaders += families["mosaik_groups_raft_is_leader"].samples[0].value
            for name in ("raft_has_leader", "online"):
                assert families[f"mosaik_groups_{name}"].samples[0].value == 1.0
            assert families["mosaik_groups_raft_round"].samples[0].value >= 1
            assert families["mosaik_groups_raft_elections"].type == "counter"
            assert families["mosaik_discovery_catalog_size"].samples[0].value == 2.0
            (applies,) = [
                s
                for s in families["mosaik_groups_apply_seconds"].samples
                if s.name.endswith("_count")
            ]
            assert applies.value >= 1
        assert leaders == 1.0
        for collector, registry in zip(collectors, registries, strict=True):
            registry.unregister(collector)
            assert "mosaik_groups_raft_committed" not in scrape(registry)
