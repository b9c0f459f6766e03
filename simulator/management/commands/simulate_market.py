"""Runs the market simulator in the foreground: reference prices move, the bots quote and trade."""
import random
import time

from django.core.management.base import BaseCommand

from orders.models import Instrument
from outbox.services import outbox_drain
from simulator.services import simulator_run_once


class Command(BaseCommand):
    help = ("Run the market simulator: a random walk of reference prices and bots trading through the order "
            "services. With --match, also drain matching here (when no Celery worker runs).")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
        parser.add_argument("--ticks", type=int, default=0, help="stop after this many ticks (0: run until Ctrl-C)")
        parser.add_argument("--symbols", nargs="*", help="only these symbols (default: every open one)")
        parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
        parser.add_argument("--match", action="store_true", help="drain the matching outbox after each tick")

    def handle(self, *args, interval, ticks, symbols, seed, match, **options):
        rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
        done = 0
        try:
            while not ticks or done < ticks:
                started = time.monotonic()
                report = simulator_run_once(rng=rng, symbols=symbols)
                if report is None:
                    self.stderr.write("another simulator tick is running; skipped")
                else:
                    if match:
                        self._match(symbols)
                    self.stdout.write(f"tick {done + 1}: {report.symbols} symbols, {report.placed} placed, "
                                      f"{report.replaced} replaced, {report.canceled} canceled, "
                                      f"{report.taken} taker orders, {report.refused} refused")
                done += 1
                if not ticks or done < ticks:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
        except KeyboardInterrupt:
            self.stdout.write("stopped")

    def _match(self, symbols) -> None:
        names = symbols or Instrument.objects.filter(is_tradable=True).values_list("symbol", flat=True)
        for symbol in names:
            while outbox_drain(queue="critical", partition_key=symbol.upper()):
                pass
