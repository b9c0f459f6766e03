"""The local stack's process supervisor, on real child processes."""
import os
import signal
import sys
import time

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


def _wait_dead(process, timeout: float = 30) -> None:
    process.wait(timeout=timeout)


def test_a_child_killed_with_sigkill_is_restarted_and_the_console_says_so(capsys):
    stack = devstack.Stack()
    try:
        first = stack.spawn("worker", [sys.executable, "-c", "import time; time.sleep(120)"], restart=True)
        os.kill(first.pid, signal.SIGKILL)
        _wait_dead(first)

        assert stack.supervise() is None  # noticed: restart scheduled after the first back-off, 1 s
        deadline = time.monotonic() + 10
        while stack.children[0][1] is first and time.monotonic() < deadline:
            assert stack.supervise() is None
            time.sleep(0.1)

        name, second = stack.children[0]
        assert name == "worker" and second is not first
        assert second.poll() is None  # the new one runs
        out = capsys.readouterr().out
        assert "worker was killed by SIGKILL after 0s; restarting it in 1s" in out
        assert f"worker restarted (pid {second.pid})" in out
    finally:
        stack.stop()
    assert stack.children == []


def test_the_back_off_doubles_to_thirty_seconds_and_resets_after_a_minute_up(capsys):
    stack = devstack.Stack()
    try:
        stack.spawn("beat", [sys.executable, "-c", "raise SystemExit(3)"], restart=True)
        plan = stack.restarts["beat"]
        now = plan.started
        delays = []
        for _ in range(7):
            _wait_dead(stack.children[0][1])
            assert stack.supervise(now=now) is None
            delays.append(plan.due - now)
            now = plan.due
            assert stack.supervise(now=now) is None  # due: started again
        assert delays == [1, 2, 4, 8, 16, 30, 30]

        _wait_dead(stack.children[0][1])
        assert stack.supervise(now=now + 61) is None  # it had stayed up a minute: back to 1 s
        assert plan.due - (now + 61) == 1
        assert "beat exited with code 3" in capsys.readouterr().out
    finally:
        stack.stop()


def test_a_child_that_is_not_restartable_is_reported_so_the_platform_stops():
    stack = devstack.Stack()
    try:
        child = stack.spawn("postgres", [sys.executable, "-c", "raise SystemExit(2)"])
        _wait_dead(child)
        assert stack.supervise() == ("postgres", 2)
    finally:
        stack.stop()
