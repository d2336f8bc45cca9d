"""Every log record of the test process, formatted as the services format them (JSON)."""
import contextlib
import json
import logging

from runtime.logs import JsonFormatter


class Capture(logging.Handler):
    def __init__(self, service=""):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter(service=service))
        self.lines = []

    def emit(self, record):
        # the lines a stream handler writes: a record may carry several (runtime.logs)
        self.lines.extend(self.format(record).split("\n"))

    def records(self):
        return [json.loads(line) for line in self.lines]


@contextlib.contextmanager
def capturing(service=""):
    """The root logger at DEBUG, the most a deployment could ever write, into a Capture."""
    handler = Capture(service)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
