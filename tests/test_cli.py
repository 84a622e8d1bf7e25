"""The `mosaik` command line, run as ``python -m mosaik`` in child processes:
the demo end to end, every bad input, --help, keygen, and three hand-started
nodes forming a group. Every process a test starts is killed in ``finally``."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_node import MOSAIK, Node
from prometheus_client.parser import text_string_to_metric_families

from mosaik.cli.machines import DEFAULT_MACHINE, load_machine
from mosaik.cli.node_runner import NodeSettings
from mosaik.cli.timings import consensus_for
from mosaik.group import derive_group_id, state_sync_of
from mosaik.keys import GroupKey
from mosaik.state_machine import machine_signature

HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
QUICK = 30.0  # a command that fails on bad input answers well within this


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without MOSAIK_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIK_")}
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


def mosaik(*args: str, limit: float = QUICK, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MOSAIK, *args],
        capture_output=True,
        text=True,
        timeout=limit,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def group_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "group.key"
    assert mosaik("keygen", "--group", "-o", str(path)).returncode == 0
    return path


# -- the demo -----------------------------------------------------------------


def test_demo_with_three_nodes_kills_the_leader_and_ends_consistent() -> None:
    started = time.monotonic()
    done = mosaik("demo", "--nodes", "3", "--duration", "1", "--rate", "100", limit=60.0)
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, f"rc={done.returncode}\n{out}\n{done.stderr}"
    assert took < 45.0, f"the demo took {took:.1f}s"
    assert "Traceback" not in out + done.stderr
    assert "elected leader" in out
    assert "killing the leader" in out
    assert re.search(r"failover: node-\d leads \d+\.\d+s after the kill", out), out
    assert "rejoined and caught up" in out
    assert len(re.findall(r"node-\d state digest [0-9a-f]{64}", out)) == 3, out
    assert out.strip().splitlines()[-1].startswith("CONSISTENT: all 3 nodes hold the same state")
    assert "\x1b[" not in out, "colour codes on a stdout that is not a terminal"


# -- help and keygen ----------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["demo"], ["node"], ["keygen"]])
def test_every_command_has_help(command: list[str]) -> None:
    done = mosaik(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: mosaik"), done.stdout
    assert done.stderr == ""


def test_help_lists_the_subcommands() -> None:
    out = mosaik("--help").stdout
    for name in ("demo", "node", "keygen"):
        assert re.search(rf"^\s+{name}\s", out, re.MULTILINE), out


@pytest.mark.parametrize("kind", [[], ["--node"], ["--group"]])
def test_keygen_prints_64_hex_characters(kind: list[str]) -> None:
    first, second = mosaik("keygen", *kind), mosaik("keygen", *kind)
    assert first.returncode == 0 and second.returncode == 0
    assert HEX_KEY.match(first.stdout.strip()) and first.stdout.endswith("\n")
    assert first.stdout != second.stdout


def test_keygen_writes_a_private_file_and_will_not_overwrite_it(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    done = mosaik("keygen", "-o", str(path))
    assert done.returncode == 0 and done.stdout == ""
    assert HEX_KEY.match(path.read_text().strip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = mosaik("keygen", "-o", str(path))
    assert again.returncode != 0
    assert "exists already" in again.stderr
    assert mosaik("keygen", "--force", "-o", str(path)).returncode == 0


def test_keygen_force_over_a_readable_file_leaves_a_private_new_one(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("old\n")
    path.chmod(0o644)
    done = mosaik("keygen", "--force", "-o", str(path))
    assert done.returncode == 0, done.stderr
    assert HEX_KEY.match(path.read_text().strip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"], "a temporary file was left"


def test_keygen_force_over_a_symlink_replaces_the_link_and_leaves_its_target(
    tmp_path: Path,
) -> None:
    target = tmp_path / "target"
    target.write_text("the target's own content\n")
    target.chmod(0o644)
    link = tmp_path / "node.key"
    link.symlink_to(target)
    refused = mosaik("keygen", "-o", str(link))
    assert refused.returncode != 0 and "exists already" in refused.stderr
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "nowhere")
    refused = mosaik("keygen", "-o", str(dangling))
    assert refused.returncode != 0 and "exists already" in refused.stderr
    assert not (tmp_path / "nowhere").exists()

    done = mosaik("keygen", "--force", "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert not link.is_symlink()
    assert HEX_KEY.match(link.read_text().strip())
    assert stat.S_IMODE(link.stat().st_mode) == 0o600
    assert target.read_text() == "the target's own content\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


# -- bad input ----------------------------------------------------------------


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, f"exit 0 on bad input; stdout {done.stdout!r}"
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.fixture
def bad_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.key"
    path.write_text("not a key\n")
    return path


def test_missing_group_key_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"
    assert_one_line_error(mosaik("node", "--key-file", str(missing)), "not found", str(missing))


def test_malformed_group_key_file(bad_key_file: Path) -> None:
    done = mosaik("node", "--key-file", str(bad_key_file))
    assert_one_line_error(done, "malformed group key", str(bad_key_file))


def test_malformed_secret_key_file(group_key_file: Path, bad_key_file: Path) -> None:
    done = mosaik("node", "--key-file", str(group_key_file), "--secret-key-file", str(bad_key_file))
    assert_one_line_error(done, "malformed secret key", str(bad_key_file))


def test_malformed_group_key_from_the_environment() -> None:
    assert_one_line_error(mosaik("node", MOSAIK_NODE_GROUP_KEY="abc"), "malformed group key")


def test_no_group_key() -> None:
    assert_one_line_error(mosaik("node"), "no group key", "--key-file")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_such_module_xyz:Machine", ["cannot import", "no_such_module_xyz"]),
        ("mosaik.examples.kv:Missing", ["has no class Missing"]),
        ("mosaik.examples.kv", ["expected module:Class"]),
    ],
)
def test_unusable_state_machine(group_key_file: Path, spec: str, words: list[str]) -> None:
    done = mosaik("node", "--key-file", str(group_key_file), "--state-machine", spec)
    assert_one_line_error(done, *words)


def test_debug_log_level_shows_the_traceback(group_key_file: Path) -> None:
    done = mosaik(
        "node",
        "--log-level",
        "debug",
        "--key-file",
        str(group_key_file),
        "--state-machine",
        "no_such_module_xyz:Machine",
    )
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("mosaik: error: cannot import")


def test_port_in_use(group_key_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # QUIC is UDP
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = mosaik("node", "--key-file", str(group_key_file), "--listen", f"127.0.0.1:{port}")
    assert_one_line_error(done, f"127.0.0.1:{port}", "in use")


def test_unreachable_bootstrap_is_fatal(group_key_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        peer = f"{'ab' * 32}@127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        done = mosaik(
            "node",
            "--key-file",
            str(group_key_file),
            "--timings",
            "fast",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            peer,
            "--bootstrap-timeout",
            "1.5",
        )
    assert_one_line_error(done, "bootstrap peer unreachable within 1.5s", peer)
    assert time.monotonic() - started < QUICK


def test_malformed_bootstrap_address(group_key_file: Path) -> None:
    done = mosaik("node", "--key-file", str(group_key_file), "--bootstrap", "nonsense")
    assert_one_line_error(done, "invalid endpoint address", "nonsense")


def test_a_data_dir_that_is_a_file_is_refused(group_key_file: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    done = mosaik("node", "--key-file", str(group_key_file), "--data-dir", str(not_a_dir))
    assert_one_line_error(done, "--data-dir", "is a file")


@pytest.mark.parametrize("nodes", ["0", "-1", "many"])
def test_demo_refuses_a_bad_node_count(nodes: str) -> None:
    assert_one_line_error(mosaik("demo", "--nodes", nodes), "--nodes", nodes)


def test_unknown_command() -> None:
    assert_one_line_error(mosaik("frobnicate"), "No such command", "frobnicate")


# -- keys kept out of sight ---------------------------------------------------

# Options that make `mosaik node` exit right after it has read all the others.
FAIL_FAST = ("--state-machine", "mosaik.examples.kv:Missing")
INLINE_KEY = "ab" * 32


@pytest.mark.parametrize(
    ("flag", "advice"),
    [
        ("--group-key", ["--key-file", "MOSAIK_NODE_GROUP_KEY"]),
        ("--secret-key", ["--secret-key-file", "MOSAIK_NODE_SECRET_KEY"]),
    ],
)
def test_a_key_on_the_command_line_is_warned_about(
    group_key_file: Path, flag: str, advice: list[str]
) -> None:
    group = [] if flag == "--group-key" else ["--key-file", str(group_key_file)]
    done = mosaik("node", *group, flag, INLINE_KEY, *FAIL_FAST)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, f"expected a warning and an error, got {lines}"
    warning, error = lines
    assert warning.startswith("mosaik: warning:"), warning
    for word in [flag, "visible in ps", *advice]:
        assert word in warning, f"{word!r} not in {warning!r}"
    assert INLINE_KEY not in done.stderr
    assert error.startswith("mosaik: error:") and "has no class Missing" in error


def test_keys_from_the_environment_are_not_warned_about() -> None:
    done = mosaik(
        "node", *FAIL_FAST, MOSAIK_NODE_GROUP_KEY=INLINE_KEY, MOSAIK_NODE_SECRET_KEY="cd" * 32
    )
    assert_one_line_error(done, "has no class Missing")


def test_node_settings_repr_and_str_hide_every_key() -> None:
    group_key, secret_key = GroupKey.generate(), "cd" * 32
    settings = NodeSettings(
        network="my-app",
        listen="127.0.0.1:0",
        advertise=(),
        bootstrap=(),
        group_key=group_key,
        secret_key=secret_key,
        machine=DEFAULT_MACHINE,
        consensus=consensus_for("fast"),
        metrics=None,
        data_dir=None,
        gossip_interval=3.0,
        bootstrap_timeout=5.0,
        status_interval=0.5,
        control=False,
    )
    for text in (repr(settings), str(settings)):
        assert "group_key=<secret>" in text and "secret_key=<secret>" in text, text
        assert group_key.to_hex() not in text and secret_key not in text, text
        assert "network='my-app'" in text, text
    assert "secret_key=None" in repr(dataclasses.replace(settings, secret_key=None))


# -- nodes started by hand ----------------------------------------------------


@contextmanager
def nodes() -> Iterator[Callable[..., Node]]:
    started: list[Node] = []

    def start(*args: str, cwd: Path | None = None, **env: str) -> Node:
        node = Node([*args], clean_env(**env), cwd)
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            node.kill()


def bonds(count: int) -> Callable[[str], bool]:
    return lambda line: "status: " in line and f" bonds={count}" in line


def test_two_nodes_form_a_group_and_a_third_joins_by_bootstrap(group_key_file: Path) -> None:
    common = ["--key-file", str(group_key_file), "--timings", "fast", "--status-interval", "0.1"]
    common += ["--listen", "127.0.0.1:0"]
    with nodes() as start:
        first = start(*common)
        first_addr = first.address()
        second = start(*common, "--bootstrap", first_addr)
        second.address()
        for node in (first, second):
            node.expect(bonds(1), 15.0, "a bond between the first two")
        # The third takes its settings from the environment.
        third = start(
            MOSAIK_NODE_KEY_FILE=str(group_key_file),
            MOSAIK_NODE_TIMINGS="fast",
            MOSAIK_NODE_BOOTSTRAP=first_addr,
            MOSAIK_NODE_LISTEN="127.0.0.1:0",
        )
        third.address()
        meshed = [
            node.expect(lambda s: bonds(2)(s) and "leader=none" not in s, 15.0, "a full mesh")
            for node in (first, second, third)
        ]
        leaders = {re.findall(r"leader=(\w+)", line)[0] for line in meshed}
        assert len(leaders) == 1, f"not one leader: {meshed}"
        assert sum(" role=leader " in line for line in meshed) == 1, meshed
        for node in (third, second, first):
            code, err = node.stop()
            assert code == 0, err
            assert "got SIGTERM: leaving the group" in err
            assert "Traceback" not in err


def test_a_node_with_a_data_dir_restarts_with_its_log_and_locks_the_dir(
    group_key_file: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "node.key"
    assert mosaik("keygen", "-o", str(secret)).returncode == 0
    data = tmp_path / "data"
    args = ["--key-file", str(group_key_file), "--secret-key-file", str(secret)]
    args += ["--timings", "fast", "--status-interval", "0.1", "--data-dir", str(data)]
    args += ["--listen", "127.0.0.1:0"]
    leading = lambda line: "status: " in line and " role=leader " in line  # noqa: E731
    with nodes() as start:
        first = start(*args)
        first.address()
        line = first.expect(leading, 15.0, "the lone node leading")
        committed = int(re.findall(r"committed=(\d+)", line)[0])
        second = start(*args)
        second.proc.wait(timeout=QUICK)
        assert second.proc.stderr is not None
        err = second.proc.stderr.read()
        assert second.proc.returncode == 1
        assert "in use by another process" in err, err
        code, err = first.stop()
        assert code == 0, err
        again = start(*args)
        again.address()
        line = again.expect(
            lambda s: leading(s) and int(re.findall(r"committed=(\d+)", s)[0]) > committed,
            15.0,
            "the restarted node leading with its old log and a new term's marker",
        )
        assert again.stop()[0] == 0


# -- addresses, quorum and the machine's module ---------------------------------


def test_the_default_listen_address_is_a_stable_port() -> None:
    done = mosaik("node", "--help")
    assert done.returncode == 0 and "127.0.0.1:7770" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--listen", "0.0.0.0:0"], ["--listen 0.0.0.0:0", "--advertise"]),
        (["--listen", "127.0.0.1"], ["invalid --listen", "HOST:PORT"]),
        (["--listen", "no-such-host.invalid:7000"], ["--listen", "cannot resolve"]),
        (["--advertise", "127.0.0.2:0"], ["--advertise", "port"]),
        (["--advertise", "0.0.0.0:7000"], ["--advertise", "cannot dial"]),
        (["--min-quorum", "0"], ["--min-quorum"]),
    ],
)
def test_bad_addresses_and_quorum_are_one_line_errors(
    group_key_file: Path, args: list[str], words: list[str]
) -> None:
    assert_one_line_error(mosaik("node", "--key-file", str(group_key_file), *args), *words)


def test_a_hostname_listens_and_advertise_replaces_the_bound_address(
    group_key_file: Path,
) -> None:
    common = ["--key-file", str(group_key_file), "--timings", "fast"]
    with nodes() as start:
        named = start(*common, "--listen", "localhost:0")
        assert re.fullmatch(r"[0-9a-f]{64}@(127\.0\.0\.1|\[::1\]):\d+", named.address())
        advertised = start(*common, "--listen", "0.0.0.0:0", "--advertise", "localhost:7999")
        addr = advertised.address()
        assert addr.endswith(":7999") and "0.0.0.0" not in addr, addr
        for node in (advertised, named):
            node.expect(lambda s: "status: " in s, 15.0, "a status line")
            assert node.stop()[0] == 0


def test_min_quorum_is_part_of_the_group_id(group_key_file: Path) -> None:
    key = GroupKey.from_hex(group_key_file.read_text().strip())
    common = ["--key-file", str(group_key_file), "--timings", "fast", "--listen", "127.0.0.1:0"]
    with nodes() as start:
        node = start(*common, "--min-quorum", "2")
        line = node.expect(lambda s: s.startswith("group: "), 15.0, "the group id")
        node.expect(lambda s: "status: " in s, 15.0, "a status line")
        assert node.stop()[0] == 0
    # What a builder with the same machine, key and min_quorum derives.
    machine = load_machine(DEFAULT_MACHINE)
    for quorum, same in ((2, True), (1, False)):
        consensus = consensus_for("fast", quorum)
        expected = derive_group_id(
            key, consensus, machine_signature(machine), state_sync_of(machine).signature()
        )
        assert (line.split()[1] == str(expected)) is same


def test_a_state_machine_module_in_the_current_directory_loads(
    group_key_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "app_machine.py").write_text(
        "import mosaik\n"
        "class Machine(mosaik.StateMachine):\n"
        "    def signature(self): return 'app_machine_v1'\n"
        "    def apply(self, command, ctx): pass\n"
        "    def query(self, query): return None\n"
    )
    common = ["--key-file", str(group_key_file), "--listen", "127.0.0.1:0"]
    with nodes() as start:
        node = start(*common, "--state-machine", "app_machine:Machine", cwd=tmp_path)
        node.address()
        assert node.expect(lambda s: s.startswith("machine: "), 5.0, "machine") == (
            "machine: app_machine:Machine"
        )
        node.expect(lambda s: "status: " in s, 15.0, "a status line")
        assert node.stop()[0] == 0


def test_status_lines_carry_time_and_pid_and_leader_changes_are_told(
    group_key_file: Path,
) -> None:
    common = ["--key-file", str(group_key_file), "--timings", "fast", "--status-interval", "0.1"]
    common += ["--listen", "127.0.0.1:0"]
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d pid=(\d+) "
    with nodes() as start:
        first = start(*common)
        second = start(*common, "--bootstrap", first.address())
        second.address()
        for node in (first, second):
            line = node.expect(bonds(1), 15.0, "a bond")
            assert int(re.findall(stamp, line)[0]) == node.proc.pid, line
            assert re.search(r" round=\d+ ", line) and " term=" not in line, line
        elected = second.expect(lambda s: "leader elected: " in s, 15.0, "an election")
        assert re.search(r"in round \d+, \d+\.\d\d s after start$", elected), elected
        chosen = re.findall(r"leader elected: (\w+) ", elected)[0]
        leader, follower = (first, second) if chosen in first.seen[0] else (second, first)
        assert leader.stop()[0] == 0
        follower.expect(lambda s: "leader lost: " in s, 15.0, "the leader lost")
        again = follower.expect(lambda s: "leader elected: " in s, 15.0, "a new leader")
        assert re.search(r"\d+\.\d\d s after the last was lost$", again), again
        assert follower.stop()[0] == 0


def test_sigterm_while_waiting_for_bootstrap_peers_stops_cleanly(group_key_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        peer = f"{'ab' * 32}@127.0.0.1:{silent.getsockname()[1]}"
        with nodes() as start:
            node = start(
                "--key-file",
                str(group_key_file),
                "--listen",
                "127.0.0.1:0",
                "--bootstrap",
                peer,
                "--bootstrap-timeout",
                "30",
            )
            node.address()
            code, err = node.stop()
    assert code == 0, err
    assert "got SIGTERM: leaving the group" in err and "Traceback" not in err, err


# -- metrics, status and health ---------------------------------------------------


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5.0) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_three_nodes_serve_metrics_status_and_health(group_key_file: Path) -> None:
    common = ["--key-file", str(group_key_file), "--timings", "fast", "--status-interval", "0.1"]
    common += ["--listen", "127.0.0.1:0", "--min-quorum", "2", "--metrics", "127.0.0.1:0"]
    with nodes() as start:
        first = start(*common)
        bootstrap = first.address()
        members = [first] + [start(*common, "--bootstrap", bootstrap) for _ in range(2)]
        urls = []
        for node in members:
            line = node.expect(lambda s: s.startswith("metrics: "), 15.0, "the metrics url")
            urls.append(line.split()[1].removesuffix("/metrics"))
            node.expect(lambda s: bonds(2)(s) and "leader=none" not in s, 15.0, "a full mesh")
        leaders = 0.0
        for url, node in zip(urls, members, strict=True):
            code, text = http_get(f"{url}/metrics")
            assert code == 200
            families = {f.name: f for f in text_string_to_metric_families(text)}
            (committed,) = families["mosaik_groups_raft_committed"].samples
            assert committed.value >= 1 and set(committed.labels) == {"network", "group"}
            assert families["mosaik_groups_bonds_active"].samples[0].value == 2.0
            leaders += families["mosaik_groups_raft_is_leader"].samples[0].value
            assert http_get(f"{url}/healthz") == (200, "online\n")
            code, body = http_get(f"{url}/status")
            status = json.loads(body)
            assert code == 200 and status["pid"] == node.proc.pid and len(status["peers"]) == 2
            assert status["role"] in ("leader", "follower") and status["online"] is True
            shown = mosaik("status", url)
            assert shown.returncode == 0 and f"(pid {node.proc.pid})" in shown.stdout, shown
            assert "bonds 2: " in shown.stdout and "online yes" in shown.stdout
        assert leaders == 1.0
        # Alone, a node of a group with min_quorum 2 is not online: 503.
        for node in members[1:]:
            assert node.stop()[0] == 0
        # Once it says it has no leader, it cannot be online again alone.
        members[0].expect(lambda s: " status: " in s and "leader=none" in s, 15.0, "no leader")
        assert http_get(f"{urls[0]}/healthz") == (503, "offline\n")
        assert members[0].stop()[0] == 0
    assert_one_line_error(mosaik("status", "127.0.0.1:1"), "cannot read")


def machine_module(directory: Path, signature: str, version: int) -> Path:
    """``directory/app_tally.py``: a tally machine of ``signature`` whose
    code applies machine versions up to ``version``."""
    directory.mkdir()
    (directory / "app_tally.py").write_text(
        "import mosaik\n"
        "class Tally(mosaik.StateMachine):\n"
        f"    version = {version}\n"
        "    def __init__(self): self.total = 0\n"
        f"    def signature(self): return {signature!r}\n"
        "    def apply(self, command, ctx): self.total += command or 0\n"
        "    def query(self, query): return self.total\n"
    )
    return directory


def test_a_rolling_upgrade_of_node_processes_switches_the_machine_version(
    group_key_file: Path, tmp_path: Path
) -> None:
    old = machine_module(tmp_path / "v1", "app_tally", 1)
    new = machine_module(tmp_path / "v2", "app_tally", 2)
    other = machine_module(tmp_path / "other", "app_tally_renamed", 2)
    common = ["--key-file", str(group_key_file), "--timings", "fast", "--status-interval", "0.1"]
    common += ["--listen", "127.0.0.1:0", "--state-machine", "app_tally:Tally"]
    meshed = lambda line: bonds(2)(line) and "leader=none" not in line  # noqa: E731
    with nodes() as start:
        members = [start(*common, cwd=old)]
        addresses = [members[0].address()]
        for _ in range(2):
            members.append(start(*common, "--bootstrap", addresses[0], cwd=old))
            addresses.append(members[-1].address())
        for node in members:
            assert node.expect(meshed, 15.0, "a full mesh").endswith(" version=1")
        # One member at a time goes down and comes back with the new code;
        # the group does not switch while any member runs the old one.
        for i in range(3):
            assert members[i].stop()[0] == 0
            live = addresses[(i + 1) % 3]
            members[i] = start(*common, "--bootstrap", live, cwd=new)
            addresses[i] = members[i].address()
            line = members[i].expect(meshed, 15.0, "the restarted member back in the mesh")
            if i < 2:
                assert line.endswith(" version=1"), line
        switched = lambda s: " status: " in s and s.endswith(" version=2")  # noqa: E731
        for node in members:
            if not any(switched(line) for line in node.seen):
                node.expect(switched, 15.0, "version 2")
        # A node with the key and another machine signature is told of.
        stray = start(*common, "--bootstrap", addresses[0], cwd=other)
        stray.address()
        stray.expect(lambda s: " status: " in s, 15.0, "a status line")
        code, err = stray.stop()
        assert code == 0
        assert "holds this group's key but runs group" in err, err
        assert "differs in: machine signature" in err, err
        for node in members:
            assert node.stop()[0] == 0
