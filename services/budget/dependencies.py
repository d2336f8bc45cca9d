"""The budget service's database: the shared :class:`runtime.dependencies.Database`
that also seeds the yearly envelopes when it starts on an empty table."""
import os

from nameko import config

from runtime import clock
from runtime.dependencies import Database

from . import repository

DEFAULT_ENVELOPES_FILE = os.path.join(os.path.dirname(__file__), "envelopes.yaml")


def seed_years(today=None):
    """The current and the next year (config TODAY, ISO date, overrides the clock)."""
    if today is None:
        today = clock.today()
    return [today.year, today.year + 1]


class BudgetDatabase(Database):
    def start(self):
        super().start()
        defaults = repository.load_envelope_defaults(config.get("ENVELOPES_FILE") or DEFAULT_ENVELOPES_FILE)
        repository.seed_envelopes(self.core, defaults, seed_years())
