"""The local stack's process supervisor, on real child processes."""
import os
import sys

from brokerx import devstack


def test_a_child_started_with_a_niceness_runs_at_it(tmp_path):
    report = tmp_path / "nice.txt"
    stack = devstack.Stack()
    try:
        code = f"import os; open({str(report)!r}, 'w').write(str(os.nice(0)))"
        child = stack.spawn("probe", [sys.executable, "-c", code], nice=7)
        assert child.wait(timeout=30) == 0
    finally:
        stack.stop()
    assert int(report.read_text()) == os.nice(0) + 7
