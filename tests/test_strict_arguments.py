"""Arguments a user got wrong are refused at the call, with a message that
says what is wrong, instead of being read as something else."""

from __future__ import annotations

import pytest
from machines import Counter

import mosaik
from conftest import networks


async def test_a_consistency_given_as_a_string_is_a_type_error() -> None:
    async with networks(1) as (net,):
        group = net.groups().with_key(mosaik.GroupKey.generate()).with_state_machine(Counter())
        joined = group.join()
        with pytest.raises(TypeError, match=r"mosaik\.Consistency"):
            await joined.query("value", "strong")  # type: ignore[arg-type]
        await joined.leave()


def test_an_election_timeout_not_above_the_heartbeat_is_refused_naming_both() -> None:
    for election in (1.0, 2.0):
        with pytest.raises(mosaik.ConfigError) as info:
            mosaik.ConsensusConfig(heartbeat_interval=2.0, election_timeout=election)
        assert "election_timeout" in str(info.value)
        assert "heartbeat_interval 2s" in str(info.value)


def test_an_election_timeout_below_the_default_jitter_names_both_values() -> None:
    with pytest.raises(mosaik.ConfigError) as info:
        mosaik.ConsensusConfig(heartbeat_interval=0.05, heartbeat_jitter=0.01, election_timeout=0.1)
    message = str(info.value)
    assert "election_timeout_jitter 500ms" in message
    assert "election_timeout 100ms" in message


@pytest.mark.parametrize(
    "make",
    [
        lambda n: mosaik.ConsensusConfig(max_missed_heartbeats=n),
        lambda n: mosaik.LogReplaySync(batch_size=n),
        lambda n: mosaik.Limits(max_peers=n),
    ],
    ids=["consensus", "log-replay", "limits"],
)
def test_integers_beyond_64_bits_or_negative_say_so(make: object) -> None:
    assert callable(make)
    with pytest.raises(mosaik.ConfigError, match="does not fit in 64 bits"):
        make(2**70)
    with pytest.raises(mosaik.ConfigError, match="must not be negative"):
        make(-1)
    with pytest.raises(mosaik.ConfigError, match="expected an int"):
        make(True)


def test_one_address_string_where_a_list_is_needed_is_refused() -> None:
    builder = mosaik.Network.builder("strict")
    with pytest.raises(mosaik.ConfigError, match="a list"):
        builder.with_addresses("127.0.0.1:0")  # type: ignore[arg-type]
