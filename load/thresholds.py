"""The load tests' thresholds and verdicts, without Locust: the README's "Load tests" table is the one text of them.

Each row of that table names a scenario, a measure, its key (in backticks) and a bound such as `<= 25 ms` or
`>= 300 orders/s`. `thresholds_load()` reads them; `verdicts()` compares measured figures against one scenario's
rows and gives one PASS or FAIL line per row; a measure that was not taken fails (a run that measured nothing
must not pass). `step_holds()` is the ramp's rule for one step.
"""
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Load tests"
_BOUND = re.compile(r"^(<=|>=)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(.*)$")
_COMPARE = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Threshold:
    scenario: str
    key: str
    measure: str
    op: str
    limit: float
    unit: str

    def holds(self, value: float) -> bool:
        return _COMPARE[self.op](value, self.limit)

    def bound(self) -> str:
        return f"{self.op} {self.limit:g}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Verdict:
    threshold: Threshold
    value: float | None

    @property
    def passed(self) -> bool:
        return self.value is not None and not math.isnan(self.value) and self.threshold.holds(self.value)

    def line(self) -> str:
        t = self.threshold
        shown = "not measured" if self.value is None or math.isnan(self.value) else f"{self.value:.2f}"
        unit = f" {t.unit}" if t.unit and shown != "not measured" else ""
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} {t.scenario} {t.key}: {shown}{unit} (threshold {t.bound()}; {t.measure})"


def thresholds_parse(text: str) -> dict[str, dict[str, Threshold]]:
    """{scenario: {key: Threshold}} from the rows of the table under SECTION (up to the next `## ` heading)."""
    start = text.find(SECTION)
    if start < 0:
        raise ValueError(f"no {SECTION!r} section")
    body = text[start + len(SECTION):]
    end = body.find("\n## ")
    body = body if end < 0 else body[:end]
    found: dict[str, dict[str, Threshold]] = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if len(cells) < 4 or not (cells[2].startswith("`") and cells[2].endswith("`")):
            continue  # the header, its rule, or a row of another table
        scenario, measure, key, bound = cells[0], cells[1], cells[2].strip("`"), cells[3]
        match = _BOUND.match(bound)
        if match is None:
            raise ValueError(f"threshold of {scenario} {key}: {bound!r} is not '<= N unit' or '>= N unit'")
        op, number, unit = match.groups()
        if key in found.get(scenario, {}):
            raise ValueError(f"threshold {scenario} {key} is listed twice")
        found.setdefault(scenario, {})[key] = Threshold(scenario, key, measure, op, float(number.replace(",", "")),
                                                        unit.strip())
    if not found:
        raise ValueError(f"the {SECTION!r} section has no threshold rows")
    return found


def thresholds_load(scenario: str, path: Path = README) -> dict[str, Threshold]:
    table = thresholds_parse(path.read_text(encoding="utf-8"))
    if scenario not in table:
        raise ValueError(f"no thresholds for scenario {scenario!r} in {path.name} (have: {', '.join(sorted(table))})")
    return table[scenario]


def verdicts(thresholds: dict[str, Threshold], measured: dict[str, float | None]) -> list[Verdict]:
    return [Verdict(t, measured.get(key)) for key, t in thresholds.items()]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values (which no bound accepts)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def error_pct(failures: int, requests: int) -> float:
    return 100.0 * failures / requests if requests else math.nan


@dataclass
class Step:
    """One step of the ramp: its users, and what the order traders saw while it ran."""
    users: int
    seconds: float
    requests: int = 0
    failures: int = 0
    ack_ms: list[float] | None = None

    def measured(self) -> dict[str, float]:
        acks = self.ack_ms or []
        return {"step_error_pct": error_pct(self.failures, self.requests),
                "step_ack_p99_ms": percentile(acks, 99),
                "orders_per_s": len(acks) / self.seconds if self.seconds > 0 else math.nan}


STEP_KEYS = ("step_error_pct", "step_ack_p99_ms")


def step_holds(step: Step, thresholds: dict[str, Threshold]) -> bool:
    """A step holds when every per-step bound of the ramp holds on it (an empty step does not hold)."""
    measured = step.measured()
    return all(Verdict(thresholds[key], measured[key]).passed for key in STEP_KEYS if key in thresholds)
