"""Check the platform's invariants (brokerx.invariants); print what drifted and exit non-zero if anything did."""
import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from brokerx.invariants import CHECKS, invariants_check


class Command(BaseCommand):
    help = "Check the ledger, reservations, orders, fills, sagas and outbox invariants; exit 1 on any drift."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="append", choices=sorted(CHECKS), dest="checks",
                            help="Run only this check (repeatable); default: all.")
        parser.add_argument("--outbox-deadline", type=float, metavar="SECONDS",
                            help="How long a due outbox event may stay pending (default: "
                                 "OUTBOX_PENDING_DEADLINE_SECONDS, else 300).")
        parser.add_argument("--json", action="store_true", help="Print the violations as a JSON list.")

    def handle(self, *args, checks=None, outbox_deadline=None, json=False, **options):  # noqa: A002
        deadline = timedelta(seconds=outbox_deadline) if outbox_deadline is not None else None
        violations = invariants_check(only=checks, outbox_deadline=deadline)
        if json:
            self.stdout.write(_dumps([v.__dict__ for v in violations]))
        else:
            for violation in violations:
                self.stdout.write(str(violation))
        names = checks or list(CHECKS)
        if violations:
            failed = sorted({v.check for v in violations})
            raise CommandError(f"{len(violations)} invariant violation(s) in {', '.join(failed)} "
                               f"({len(names)} checks run)", returncode=1)
        if not json:
            self.stdout.write(self.style.SUCCESS(f"all {len(names)} invariant checks hold: {', '.join(names)}"))


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
