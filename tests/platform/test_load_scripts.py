"""The load tests' own logic, without load: the README's thresholds, the PASS/FAIL verdicts, the ramp's step rule,
and that each locustfile loads in Locust with its users (in a subprocess: importing Locust patches the process with
gevent)."""
import math
import subprocess
import sys
from pathlib import Path

import pytest

from load import run
from load.thresholds import Step, step_holds, thresholds_load, thresholds_parse, verdicts

BASE_DIR = Path(__file__).resolve().parents[2]

TABLE = """# X
## Load tests

| scenario | measure | key | threshold | from |
|---|---|---|---|---|
| steady | order ACK latency, p99 | `ack_p99_ms` | <= 25 ms | brief |
| steady | failed requests | `error_pct` | <= 1 % | |
| ramp | a step holds while its failed requests stay | `step_error_pct` | <= 1 % | |
| ramp | a step holds while its ACK p99 stays | `step_ack_p99_ms` | <= 500 ms | |
| ramp | orders/s | `held_orders_per_s` | >= 1,000 orders/s | |

| a table without keys | x | y | z |
|---|---|---|---|
| not | a | threshold | row |

## Next section
| steady | ignored | `ignored` | <= 1 ms | |
"""


def test_the_readme_table_gives_every_scenario_its_thresholds():
    for scenario, keys in {"steady": {"ack_p99_ms", "fill_push_p99_ms", "order_to_fill_p99_ms", "market_push_p99_ms",
                                      "error_pct"},
                           "ramp": {"step_error_pct", "step_ack_p99_ms", "held_orders_per_s", "error_pct"},
                           "fanout": {"market_push_p99_ms", "seq_gaps", "error_pct"}}.items():
        assert keys <= set(thresholds_load(scenario))
    # The brief's targets, as the README states them.
    assert thresholds_load("steady")["ack_p99_ms"].bound() == "<= 25 ms"
    assert thresholds_load("steady")["fill_push_p99_ms"].limit == 100
    assert thresholds_load("fanout")["market_push_p99_ms"].limit == 250


def test_parsing_reads_only_the_section_rows_with_a_key():
    table = thresholds_parse(TABLE)
    assert set(table) == {"steady", "ramp"}
    assert set(table["steady"]) == {"ack_p99_ms", "error_pct"}  # the next section's row is not read
    held = table["ramp"]["held_orders_per_s"]
    assert (held.op, held.limit, held.unit) == (">=", 1000.0, "orders/s")


@pytest.mark.parametrize("bad, message", [
    ("| steady | ACK | `ack_p99_ms` | about 25 ms | |", "is not"),
    ("| steady | ACK | `ack_p99_ms` | <= 25 ms | |\n| steady | ACK | `ack_p99_ms` | <= 30 ms | |", "twice"),
])
def test_a_malformed_table_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        header = "| scenario | measure | key | threshold | from |\n|---|---|---|---|---|"
        thresholds_parse(f"## Load tests\n\n{header}\n{bad}\n")
    with pytest.raises(ValueError, match="no '## Load tests' section"):
        thresholds_parse("# nothing here")


def test_verdicts_pass_and_fail_on_the_bound_and_fail_what_was_not_measured():
    table = thresholds_parse(TABLE)
    results = {v.threshold.key: v for v in verdicts(table["steady"], {"ack_p99_ms": 25.0, "error_pct": 1.01})}
    assert results["ack_p99_ms"].passed  # on the bound holds
    assert results["ack_p99_ms"].line() == ("PASS steady ack_p99_ms: 25.00 ms (threshold <= 25 ms; "
                                            "order ACK latency, p99)")
    assert not results["error_pct"].passed
    assert results["error_pct"].line().startswith("FAIL steady error_pct: 1.01 %")
    missing = verdicts(table["steady"], {"ack_p99_ms": math.nan})
    assert [v.passed for v in missing] == [False, False]
    assert "not measured" in missing[0].line() and "not measured" in missing[1].line()
    at_least = verdicts(table["ramp"], {"held_orders_per_s": 999.9})
    assert [v.passed for v in at_least if v.threshold.key == "held_orders_per_s"] == [False]


def test_a_ramp_step_holds_only_within_every_step_bound():
    ramp = thresholds_parse(TABLE)["ramp"]
    calm = Step(users=25, seconds=10, requests=500, failures=5, ack_ms=[10.0] * 98 + [400.0, 450.0])
    assert step_holds(calm, ramp)
    assert calm.measured()["orders_per_s"] == 10.0
    assert calm.measured()["step_ack_p99_ms"] == 400.0  # nearest rank: the 99th of 100
    slow = Step(users=50, seconds=10, requests=500, failures=0, ack_ms=[10.0] * 98 + [600.0, 700.0])
    assert not step_holds(slow, ramp)
    failing = Step(users=50, seconds=10, requests=500, failures=6, ack_ms=[10.0] * 100)
    assert not step_holds(failing, ramp)
    assert not step_holds(Step(users=75, seconds=10, ack_ms=[]), ramp)  # nothing answered: no hold


def test_the_driver_runs_locust_headless_and_bounded():
    command = run.locust_command("steady", url="http://127.0.0.1:8100", users=None, run_time=None, extra=["-x"])
    assert command[command.index("--host") + 1] == "http://127.0.0.1:8100"
    assert "--headless" in command and command[command.index("--run-time") + 1] == "60s"
    assert command[command.index("--users") + 1] == "60" and command[-1] == "-x"
    ramp = run.locust_command("ramp", url="http://x", users=5, run_time="30s", extra=[])
    assert "--users" not in ramp and ramp[ramp.index("--run-time") + 1] == "30s"  # the shape sets the users


@pytest.mark.parametrize("scenario, user_classes", [
    ("steady", {"Trader", "CrossingTrader", "Watcher"}),
    ("ramp", {"RampTrader"}),
    ("fanout", {"Subscriber"}),
])
def test_each_locustfile_loads_in_locust(scenario, user_classes, tmp_path):
    listed = subprocess.run([sys.executable, "-m", "locust", "-f", str(BASE_DIR / run.SCENARIOS[scenario][0]),
                             "--list"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()} == user_classes
