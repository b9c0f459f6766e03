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


def test_the_console_shows_the_childrens_warnings_and_errors_only(tmp_path):
    import io
    import json

    earlier = tmp_path / "web.log"
    earlier.write_text(json.dumps({"level": "ERROR", "logger": "old", "message": "from a previous run"}) + "\n")
    out = io.StringIO()
    console = devstack.ConsoleTail(tmp_path, out=out)
    console.start_at_end("web")
    console.start_at_end("worker-critical")

    with earlier.open("a") as web:
        web.write(json.dumps({"level": "INFO", "logger": "django", "message": "request done"}) + "\n")
        web.write(json.dumps({"level": "WARNING", "logger": "brokerx.db", "message": "deadlock victim\nmore"}) + "\n")
        web.write("INFO:     Started server process [12]\n")
        web.write("ERROR:    Exception in ASGI application\n")
        web.write(json.dumps({"level": "ERROR", "logger": "late", "message": "half"})[:20])  # not yet a whole line
    (tmp_path / "worker-critical.log").write_text(
        json.dumps({"level": "CRITICAL", "logger": "celery", "message": "lost"}) + "\n")
    console.poll()

    assert out.getvalue().splitlines() == [
        "[web] WARNING brokerx.db: deadlock victim",
        "[web] ERROR:    Exception in ASGI application",
        "[worker-critical] CRITICAL celery: lost",
    ]
    with earlier.open("a") as web:
        web.write(json.dumps({"level": "ERROR", "logger": "late", "message": "half"})[20:] + "\n")
    console.poll()
    assert out.getvalue().splitlines()[-1] == "[web] ERROR late: half"
    assert console.shown == 4


def test_the_console_prints_a_status_line_now_and_then(capsys):
    stack = devstack.Stack()
    try:
        stack.spawn("worker", [sys.executable, "-c", "import time; time.sleep(60)"], restart=True)
        console = devstack.ConsoleTail(devstack.DATA_DIR / "logs")
        start = console.last_status
        console.status(stack, now=start + 1)
        assert capsys.readouterr().out == ""
        console.status(stack, now=start + devstack.STATUS_EVERY + 1)
        line = capsys.readouterr().out
        assert "running: worker" in line and "restarts 0" in line
    finally:
        stack.stop()


def test_the_banner_names_the_urls_the_demo_sign_ins_mail_and_logs(tmp_path):
    text = devstack.banner("127.0.0.1", "8000", tmp_path)

    assert "http://127.0.0.1:8000/trade/" in text and "http://127.0.0.1:8000/admin/" in text
    assert "trader@brokerx.example" in text and "staff@brokerx.example" in text
    assert str(devstack.DATA_DIR / "mail") in text and str(tmp_path) in text
