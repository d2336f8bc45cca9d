"""Drawing an expert panel (专家组) and counting its votes: plain rules, no fixtures.
The panel rules are read from the jinjiang profile (art. 8): five experts, directed picks
at most 1/3 of the panel, passes with more than half."""
import random

import pytest

from policy import load_profile
from services.review.domain import RuleBroken, draw_panel, max_directed, panel_passes

pytestmark = pytest.mark.unit

RULES = load_profile("jinjiang").data["experts"]
PANEL = RULES["panel"]


def expert(i, unit, directed=False, active=True):
    return {"expert_id": f"E{i:03d}", "name": f"专家{i}", "unit_id": unit, "field": "软件",
            "directed": directed, "active": active}


def pool(applicant_experts=6, others=8, directed=3):
    experts = [expert(i, "applicant") for i in range(applicant_experts)]
    experts += [expert(100 + i, f"unit-{i % 3}", directed=i < directed) for i in range(others)]
    return experts


def draw(experts, directed=(), seed=None, applying_unit="applicant"):
    return draw_panel(experts, size=PANEL["size"], directed_max_fraction=PANEL["directed_max_fraction"],
                      applying_unit=applying_unit, directed=directed,
                      rng=random.Random(seed) if seed is not None else None,
                      panel_cite=PANEL["cite"], own_unit_cite=RULES["exclude_own_unit_cite"])


def test_a_panel_of_five_allows_one_directed_pick():
    assert max_directed(5, "1/3") == 1
    assert max_directed(6, "1/3") == 2
    assert max_directed(2, "1/3") == 0


def test_directed_picks_beyond_a_third_of_the_panel_are_refused_citing_the_profile():
    experts = pool()
    with pytest.raises(RuleBroken) as caught:
        draw(experts, directed=["E100", "E101"])
    assert caught.value.kind == "validation" and caught.value.rule == "directed_max"
    assert caught.value.cite == "jinjiang art. 8" and caught.value.field == "directed"
    assert "1/3" in caught.value.zh


def test_one_directed_pick_sits_on_the_panel_beside_four_random_experts():
    members = draw(pool(), directed=["E100"], seed=3)
    assert len(members) == 5
    assert [m["expert_id"] for m in members if m["directed"]] == ["E100"]
    assert len({m["expert_id"] for m in members}) == 5


@pytest.mark.parametrize("seed", range(30))
def test_no_expert_from_the_applying_unit_is_ever_drawn(seed):
    members = draw(pool(applicant_experts=10, others=6), seed=seed)
    assert all(m["unit_id"] != "applicant" for m in members)


def test_the_default_draw_uses_system_randomness():
    members = draw(pool())
    assert len(members) == 5 and all(m["unit_id"] != "applicant" for m in members)


def test_a_directed_pick_from_the_applying_unit_is_refused_citing_the_conflict_rule():
    experts = pool() + [expert(999, "applicant", directed=True)]
    with pytest.raises(RuleBroken) as caught:
        draw(experts, directed=["E999"])
    assert caught.value.rule == "expert_own_unit"
    assert caught.value.cite == RULES["exclude_own_unit_cite"]


def test_an_expert_not_eligible_for_directed_picks_cannot_be_picked_by_name():
    with pytest.raises(RuleBroken) as caught:
        draw(pool(), directed=["E107"])
    assert caught.value.rule == "expert_not_directed"


def test_an_unknown_or_inactive_expert_cannot_be_picked():
    experts = pool() + [expert(500, "unit-9", directed=True, active=False)]
    for expert_id in ("E500", "nobody"):
        with pytest.raises(RuleBroken) as caught:
            draw(experts, directed=[expert_id])
        assert caught.value.rule == "expert_unknown"


def test_inactive_experts_are_not_drawn():
    experts = [expert(i, f"u{i}", active=i >= 3) for i in range(8)]
    for seed in range(10):
        assert all(m["expert_id"] not in ("E000", "E001", "E002") for m in draw(experts, seed=seed))


def test_too_few_eligible_experts_is_a_conflict_with_a_bilingual_message():
    experts = pool(applicant_experts=10, others=4)
    with pytest.raises(RuleBroken) as caught:
        draw(experts)
    assert caught.value.kind == "conflict" and caught.value.rule == "expert_pool_insufficient"
    assert "专家" in caught.value.zh and "experts" in caught.value.en


def test_the_same_seed_draws_the_same_panel():
    assert draw(pool(), seed=11) == draw(pool(), seed=11)


@pytest.mark.parametrize("approvals, size, passes", [
    (3, 5, True), (2, 5, False), (2, 4, False), (3, 4, True), (1, 2, False), (5, 5, True), (0, 5, False),
])
def test_the_panel_passes_only_with_strictly_more_than_half(approvals, size, passes):
    assert panel_passes(approvals, size, PANEL["pass_fraction"]) is passes
