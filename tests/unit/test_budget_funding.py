"""Finance's funding opinion (资金审核): a source, enough money, and room in the envelope."""
import os
import uuid

import pytest

from contracts.enums import FUNDING_SOURCES
from policy import load_profile
from services.budget.domain import Envelope, check_funding
from services.budget.repository import load_envelope_defaults

pytestmark = pytest.mark.unit

REQUEST_CITE = "jinjiang art. 8"


def cite(check_key):
    return load_profile("jinjiang").cite(check_key, fallback=REQUEST_CITE)


def make_application(**overrides):
    app = {"name": f"项目-{uuid.uuid4().hex[:6]}", "kind": "build", "amount": 1_000_000, "year": 2026,
           "summary": "s", "funding": {"source": "budget", "amount": 1_000_000}}
    app.update(overrides)
    return app


def make_envelope(total=10_000_000, committed=0, year=2026, source="budget"):
    return Envelope(year=year, source=source, total=total, committed=committed)


def blocking_rules(draft):
    return [f["rule"] for f in draft.findings if f["severity"] == "blocking"]


def test_funding_that_covers_the_amount_within_the_envelope_is_approved():
    draft = check_funding(make_application(), make_envelope(total=5_000_000, committed=1_000_000), cite)
    assert draft.resolved_verdict() == "approve"
    assert draft.data == {"source": "budget", "remaining_before": 4_000_000}


def test_an_application_without_a_funding_source_is_rejected():
    draft = check_funding(make_application(funding=None), None, cite)
    assert draft.resolved_verdict() == "reject"
    assert blocking_rules(draft) == ["funding_source_missing"]
    assert draft.findings[0]["cite"] == "jinjiang art. 6"
    assert draft.data == {"source": None, "remaining_before": None}


def test_funding_smaller_than_the_amount_is_rejected():
    app = make_application(funding={"source": "budget", "amount": 999_999})
    draft = check_funding(app, make_envelope(), cite)
    assert blocking_rules(draft) == ["funding_amount_short"]
    assert draft.findings[0]["cite"] == "jinjiang art. 9"


def test_an_exhausted_envelope_is_rejected():
    draft = check_funding(make_application(), make_envelope(total=5_000_000, committed=4_500_000), cite)
    assert blocking_rules(draft) == ["funding_envelope_exhausted"]
    assert draft.data["remaining_before"] == 500_000
    assert "500000" in draft.findings[0]["zh"]


def test_an_envelope_with_exactly_the_amount_left_is_enough():
    draft = check_funding(make_application(), make_envelope(total=2_000_000, committed=1_000_000), cite)
    assert draft.resolved_verdict() == "approve"


def test_a_source_without_an_envelope_that_year_is_rejected():
    draft = check_funding(make_application(funding={"source": "bond", "amount": 1_000_000}), None, cite)
    assert blocking_rules(draft) == ["funding_envelope_missing"]
    assert draft.data == {"source": "bond", "remaining_before": 0}


def test_short_funding_and_an_exhausted_envelope_are_both_reported():
    app = make_application(funding={"source": "budget", "amount": 10})
    draft = check_funding(app, make_envelope(total=0), cite)
    assert blocking_rules(draft) == ["funding_amount_short", "funding_envelope_exhausted"]


def test_the_dev_envelopes_cover_every_funding_source():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "services", "budget", "envelopes.yaml")
    defaults = load_envelope_defaults(path)
    assert set(defaults) == set(FUNDING_SOURCES)
    assert all(isinstance(total, int) and total > 0 for total in defaults.values())


def test_an_envelope_file_with_an_unknown_source_is_refused(tmp_path):
    path = tmp_path / "envelopes.yaml"
    path.write_text("totals: {gold: 1}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="gold"):
        load_envelope_defaults(str(path))
