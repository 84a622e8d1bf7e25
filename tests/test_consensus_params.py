"""Consensus parameters: pinned digests, and the native table, stub and builder agreeing."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import mosaik
from mosaik.consensus import PARAMETERS

# Group ids derive from these digests; a change of encoding splits every
# deployed group, so the values are pinned.
DEFAULT_DIGEST = "d845893412dda0c8f4e1a9297d21d526f651ce6d436899f55573ce8a7d3dd022"
NON_DEFAULT_DIGEST = "35d63dc54739f904a72383082786462c4b6823166dcb42cd48bc3e6fb8e00221"
DEFAULT_REPLAY_SIGNATURE = "1433ba581de5dc8d45dad18659afe17eefcbac9efae685992778d227a85ef39b"


def non_default() -> mosaik.ConsensusConfig:
    return mosaik.ConsensusConfig(
        heartbeat_interval=0.25,
        heartbeat_jitter=timedelta(milliseconds=40),
        max_missed_heartbeats=7,
        election_timeout=1.5,
        election_timeout_jitter=0.3,
        bootstrap_delay=4,
        forward_timeout=5,
        query_timeout=0.75,
        min_quorum=2,
        max_command_bytes=1 << 20,
        dedupe_window=500,
    )


def test_digest_of_the_default_config_is_pinned() -> None:
    assert mosaik.ConsensusConfig().digest().hex() == DEFAULT_DIGEST


def test_digest_of_a_non_default_config_is_pinned() -> None:
    assert non_default().digest().hex() == NON_DEFAULT_DIGEST
    assert non_default().deprioritize_leadership().digest().hex() == NON_DEFAULT_DIGEST


def test_log_replay_signature_is_pinned() -> None:
    assert mosaik.LogReplaySync().signature().hex() == DEFAULT_REPLAY_SIGNATURE


# -- one table: the native class, its stub and the builder agree -------------

STUB = Path(mosaik.__file__).with_name("_native.pyi")


def stub_class(name: str) -> ast.ClassDef:
    tree = ast.parse(STUB.read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def stub_keywords(name: str) -> list[str]:
    cls = stub_class(name)
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    return [a.arg for a in new.args.kwonlyargs]


def stub_properties(name: str) -> list[str]:
    return [
        n.name
        for n in stub_class(name).body
        if isinstance(n, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)
    ]


def native_keywords() -> list[str]:
    params = inspect.signature(mosaik.ConsensusConfig).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def test_the_native_table_the_stub_and_the_builder_name_the_same_parameters() -> None:
    names = native_keywords()
    assert names, "the native ConsensusConfig takes its parameters as keywords"
    assert stub_keywords("ConsensusConfig") == names
    assert list(PARAMETERS) == names
    assert stub_properties("ConsensusConfig") == [*names, "max_batch_bytes", "leadership_factor"]
    builder = mosaik.ConsensusConfig.builder()
    assert sorted(a for a in dir(builder) if a.startswith("with_")) == sorted(
        f"with_{n}" for n in names
    )
    shown = repr(mosaik.ConsensusConfig())
    assert [part.split("=")[0] for part in shown[len("ConsensusConfig(") : -1].split(", ")] == names


def another_value(name: str) -> Any:
    """A valid value of ``name`` other than its default."""
    default = getattr(mosaik.ConsensusConfig(), name)
    return default * 0.9 if isinstance(default, timedelta) else default + 1


@pytest.mark.parametrize("name", native_keywords())
def test_every_parameter_has_a_getter_a_with_method_and_enters_the_digest(name: str) -> None:
    value = another_value(name)
    direct = mosaik.ConsensusConfig(**{name: value})
    assert getattr(direct, name) == value
    built = getattr(mosaik.ConsensusConfig.builder(), f"with_{name}")(value).build()
    assert built == direct
    assert direct != mosaik.ConsensusConfig()
    assert direct.digest() != mosaik.ConsensusConfig().digest()
    assert inspect.getdoc(getattr(mosaik.ConsensusConfig, name)), f"{name} has no doc"


def test_the_builder_refuses_a_parameter_the_table_does_not_have() -> None:
    with pytest.raises(AttributeError, match="with_no_such_parameter"):
        mosaik.ConsensusConfig.builder().with_no_such_parameter(1)
    with pytest.raises(AttributeError):
        mosaik.ConsensusConfig.builder().heartbeat_interval  # noqa: B018


# -- durations: one conversion, one rule, one message format ------------------


def duration_settings() -> list[tuple[str, Callable[[Any], object]]]:
    consensus = [
        (name, lambda v, name=name: mosaik.ConsensusConfig(**{name: v}))
        for name in native_keywords()
        if isinstance(getattr(mosaik.ConsensusConfig(), name), timedelta)
    ]
    return [
        *consensus,
        ("fetch_timeout", lambda v: mosaik.LogReplaySync(fetch_timeout=v)),
        ("max_dial_backoff", lambda v: mosaik.Limits(max_dial_backoff=v)),
    ]


@pytest.mark.parametrize(("name", "make"), duration_settings(), ids=lambda x: str(x))
@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "expected seconds or a timedelta"),
        ("soon", "expected seconds or a timedelta"),
        (-1.0, "must be a non-negative, finite duration"),
        (float("nan"), "must be a non-negative, finite duration"),
        (float("inf"), "must be a non-negative, finite duration"),
        (timedelta(seconds=-1), "must be a non-negative, finite duration"),
    ],
)
def test_every_duration_setting_is_converted_by_the_same_rule(
    name: str, make: Callable[[Any], object], value: Any, why: str
) -> None:
    with pytest.raises(mosaik.ConfigError) as info:
        make(value)
    assert str(info.value) == f"invalid {name} {value!r}: {why}"


def test_a_reluctance_factor_below_one_is_a_config_error() -> None:
    with pytest.raises(mosaik.ConfigError):
        mosaik.LeadershipPreference.reluctant(0)
    with pytest.raises(mosaik.ConfigError):
        mosaik.ConsensusConfig().deprioritize_leadership_by(0)


def test_leadership_preference_is_the_native_one_with_its_kind_and_factor() -> None:
    pref = mosaik.LeadershipPreference
    assert pref is mosaik._native.LeadershipPreference
    assert (pref.NORMAL.kind, pref.NORMAL.factor) == ("normal", 1)
    assert (pref.OBSERVER.kind, pref.OBSERVER.factor) == ("observer", 1)
    assert (pref.reluctant().kind, pref.reluctant().factor) == ("reluctant", 3)
    assert pref.reluctant(5) == pref.reluctant(5) != pref.reluctant(4)
    assert len({pref.NORMAL, pref.OBSERVER, pref.reluctant(5), pref.reluctant(5)}) == 3
    assert repr(pref.reluctant(5)) == "LeadershipPreference.reluctant(5)"
    assert mosaik.ConsensusConfig().deprioritize_leadership_by(5).leadership_factor == 5
