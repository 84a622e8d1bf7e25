"""`mosaik.metrics`: a network's series in a `prometheus_client` registry,
read back with prometheus_client's own parser."""

from __future__ import annotations

from typing import Any

from machines import Counter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from replication_helpers import counter_group

import mosaik.metrics
from conftest import bounded, eventually, networks


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


def sample(families: dict[str, Any], family: str, suffix: str, **labels: str) -> float:
    """The value of ``family``'s sample named with ``suffix`` and ``labels``."""
    found = [
        s.value
        for s in families[family].samples
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, suffix, labels, families[family].samples)
    return float(found[0])


async def test_proposals_are_counted_and_timed_from_proposal_to_commit() -> None:
    async with counter_group(3) as (nets, groups):
        registry = CollectorRegistry()
        mosaik.metrics.register(nets[0], registry)
        scrape(registry)  # the first collection starts the commit histogram
        for _ in range(5):
            await bounded(groups[0].execute({"add": 1}))
        await bounded(groups[0].execute_many([{"add": 1}] * 3))
        families = scrape(registry)
        assert sample(families, "mosaik_groups_proposals_committed", "_total") == 8.0
        assert sample(families, "mosaik_groups_proposals_failed", "_total") == 0.0
        assert sample(families, "mosaik_groups_proposals_pending", "") == 0.0
        assert families["mosaik_groups_proposals_pending"].type == "gauge"
        # Five single executes and one batch of three: six batches timed.
        assert sample(families, "mosaik_groups_commit_seconds", "_count") == 6.0
        assert sample(families, "mosaik_groups_commit_seconds", "_sum") > 0.0


async def test_a_disk_store_shows_its_sync_times(tmp_path: Any) -> None:
    async with counter_group(1) as (nets, _):
        key = mosaik.GroupKey.generate()
        durable = (
            nets[0]
            .groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_log_storage(mosaik.DiskLogStore(tmp_path / "log"))
            .join()
        )
        await bounded(durable.when().is_leader())
        for _ in range(3):
            await bounded(durable.execute({"add": 1}))
        registry = CollectorRegistry()
        mosaik.metrics.register(nets[0], registry)
        families = scrape(registry)
        labels = {"group": str(durable.id)}
        syncs = sample(families, "mosaik_groups_store_sync_seconds", "_count", **labels)
        assert syncs >= 3
        inf = sample(families, "mosaik_groups_store_sync_seconds", "_bucket", le="+Inf", **labels)
        assert inf == syncs
        # The group in memory has no store to sync.
        assert len(families["mosaik_groups_store_sync_seconds"].samples) == 17


async def test_a_settings_mismatch_is_a_labelled_rejection() -> None:
    class CounterV2(Counter):
        def signature(self) -> str:
            return "counter_v2"

    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as nets:
        ours = nets[0].groups().with_key(key).with_state_machine(Counter()).join()
        nets[1].groups().with_key(key).with_state_machine(CounterV2()).join()
        registry = CollectorRegistry()
        mosaik.metrics.register(nets[0], registry)
        name = "mosaik.groups.bonds.rejected{reason=config_mismatch}"
        await eventually(lambda: ours.metrics().get(name) == 1.0, 10.0, "the mismatch counted")
        families = scrape(registry)
        rejected = sample(
            families,
            "mosaik_groups_bonds_rejected",
            "_total",
            reason="config_mismatch",
            group=str(ours.id),
        )
        assert rejected == 1.0
