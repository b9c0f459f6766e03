"""A ramp to the breaking point: order traders added step by step until a step's error rate or ACK p99 crosses
its README bound (scenario `ramp`, rows step_error_pct and step_ack_p99_ms), or the cap is reached. It prints each
step, then the last step that held: the breaking point.

    .venv/bin/python load/run.py ramp

Each trader places LOAD_RAMP_USER_RATE IOC limit buys a second far below the market (accepted, reserved, queued
for matching, canceled unfilled: the whole accept path, nothing left resting). Steps: LOAD_RAMP_STEP_USERS more
traders every LOAD_RAMP_STEP_SECONDS, at most LOAD_RAMP_MAX_USERS.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import LoadTestShape, constant_throughput, events, task  # noqa: E402

from load import users  # noqa: E402
from load.thresholds import Step, step_holds, thresholds_load  # noqa: E402

STEP_USERS = int(os.environ.get("LOAD_RAMP_STEP_USERS", "25"))
STEP_SECONDS = float(os.environ.get("LOAD_RAMP_STEP_SECONDS", "10"))
MAX_USERS = int(os.environ.get("LOAD_RAMP_MAX_USERS", "200"))


class RampTrader(users.Trader):
    wait_time = constant_throughput(float(os.environ.get("LOAD_RAMP_USER_RATE", "2")))

    @task
    def place_ioc(self):
        self.place(users.credentials()["order_body"], self.auth)  # IOC far below the market: nothing rests


class Ramp(LoadTestShape):
    def __init__(self):
        super().__init__()
        self.thresholds = thresholds_load("ramp")
        self.steps: list[Step] = []
        self.held: Step | None = None
        self.broke: Step | None = None
        self.done = False

    def tick(self):
        if self.done:
            return None
        index = int(self.get_run_time() // STEP_SECONDS)
        if index >= len(self.steps):
            if self.steps:
                self.close(self.steps[-1])
                if self.done:
                    return None
            users_wanted = STEP_USERS * (index + 1)
            if users_wanted > MAX_USERS:
                print(f"ramp: cap of {MAX_USERS} users reached without breaking", flush=True)
                self.done = True
                return None
            self.steps.append(Step(users=users_wanted, seconds=STEP_SECONDS, ack_ms=[]))
        return self.steps[-1].users, STEP_USERS

    def close(self, step: Step) -> None:
        m = step.measured()
        holds = step_holds(step, self.thresholds)
        print(f"ramp step {len(self.steps)}: {step.users} users, {m['orders_per_s']:.0f} orders/s, "
              f"ACK p99 {m['step_ack_p99_ms']:.1f} ms, errors {m['step_error_pct']:.2f}% -> "
              f"{'held' if holds else 'broke'}", flush=True)
        if holds:
            self.held = step
        else:
            self.broke, self.done = step, True

    def current(self) -> Step | None:
        return self.steps[-1] if self.steps and not self.done else None


@events.request.add_listener
def _per_step(request_type, name, response_time, response_length, exception=None, **kwargs):
    shape = _shape()
    step = shape.current() if shape else None
    if step is None:
        return
    if request_type == "ORDER" and name == "ack":
        step.ack_ms.append(response_time)
    elif request_type in users.COUNTED:
        step.requests += 1
        step.failures += exception is not None


_environment = []


@events.init.add_listener
def _init(environment, **kwargs):
    _environment.append(environment)


def _shape() -> Ramp | None:
    return _environment[0].shape_class if _environment else None


@events.quitting.add_listener
def _verdict(environment, **kwargs):
    shape = _shape()
    held = shape.held if shape else None
    if held is None:
        print("ramp: no step held", flush=True)
    else:
        m = held.measured()
        print(f"ramp: breaking point: the last step that held had {held.users} users, {m['orders_per_s']:.0f} "
              f"orders/s, ACK p99 {m['step_ack_p99_ms']:.1f} ms"
              + (f" (the next, {shape.broke.users} users, broke)" if shape.broke else " (cap reached)"), flush=True)
    last = held or (shape.broke if shape else None)
    users.verdict(environment, "ramp", {
        **({k: v for k, v in last.measured().items() if k != "orders_per_s"} if last else {}),
        "held_orders_per_s": held.measured()["orders_per_s"] if held else 0.0,
        "held_users": float(held.users) if held else 0.0,
        "error_pct": users.common_measures()["error_pct"],
    })
