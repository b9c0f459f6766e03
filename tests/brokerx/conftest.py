"""The OpenAPI contract run's summary (tests/brokerx/test_openapi_contract.py), printed at the end of the session;
OPENAPI_CONTRACT_VERBOSE=1 adds the statuses seen per operation."""
import os


def pytest_terminal_summary(terminalreporter):
    from tests.brokerx.test_openapi_contract import TALLY

    if not TALLY:
        return
    requests = sum(t["requests"] for t in TALLY.values())
    failures = sum(t["failures"] for t in TALLY.values())
    failing = sorted(label for label, t in TALLY.items() if t["failures"])
    terminalreporter.write_line(
        f"OpenAPI contract (Schemathesis): {len(TALLY)} operations, {requests} requests, "
        f"{len(failing)} failing operations{': ' + ', '.join(failing) if failing else ''} ({failures} failed requests)")
    if os.environ.get("OPENAPI_CONTRACT_VERBOSE"):
        for label, tally in sorted(TALLY.items()):
            statuses = ", ".join(f"{code}: {n}" for code, n in sorted(tally.items(), key=str) if isinstance(code, int))
            terminalreporter.write_line(f"  {label}: {statuses}")
