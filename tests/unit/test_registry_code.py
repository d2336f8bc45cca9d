"""The lifelong project code and its ISO 7064 MOD 11-2 check character (no network)."""
import random
import re

import pytest

from contracts.rpc_registry import PROJECT_CODE_PATTERN
from services.registry.domain import check_char, is_valid_code, project_code

pytestmark = pytest.mark.unit


def test_check_char_matches_the_gb_11643_example_whose_check_is_x():
    assert check_char("11010519491231002") == "X"


@pytest.mark.parametrize("digits,expected", [
    ("11010519491231002", "X"),  # GB 11643 example
    ("44052418800101001", "4"),
    ("34052419800101001", "X"),
    ("0", "1"),
])
def test_check_char_agrees_with_the_weighted_sum_definition(digits, expected):
    # ISO 7064 MOD 11-2 as GB 11643 writes it: weights 2^(n-i) mod 11, check = (12 - S mod 11) mod 11
    n = len(digits) + 1
    total = sum(int(d) * pow(2, n - 1 - i, 11) for i, d in enumerate(digits))
    value = (12 - total % 11) % 11
    assert check_char(digits) == ("X" if value == 10 else str(value)) == expected


def test_check_char_refuses_anything_but_digits():
    with pytest.raises(ValueError):
        check_char("12a4")
    with pytest.raises(ValueError):
        check_char("")


def test_a_code_is_year_admin_code_sequence_and_check():
    code = project_code(2026, "510104", 7)
    assert code.startswith("2026-510104-00007-")
    assert code[-1] == check_char("202651010400007")
    assert re.match(PROJECT_CODE_PATTERN, code)


def test_every_generated_code_validates_and_a_changed_digit_does_not():
    rng = random.Random(7)
    for _ in range(200):
        code = project_code(rng.randint(2000, 2100), f"{rng.randint(0, 999999):06d}", rng.randint(1, 99999))
        assert is_valid_code(code)
        # ISO 7064 MOD 11-2 catches every single-digit substitution
        position = rng.choice([i for i, ch in enumerate(code[:-2]) if ch.isdigit()])
        wrong = str((int(code[position]) + rng.randint(1, 9)) % 10)
        assert not is_valid_code(code[:position] + wrong + code[position + 1:])


def test_a_code_with_the_wrong_shape_is_not_valid():
    assert not is_valid_code("2026-510104-7-X")
    assert not is_valid_code("")
    assert not is_valid_code(None)


@pytest.mark.parametrize("year,admin,seq", [(999, "510104", 1), (2026, "5101", 1), (2026, "510104", 0),
                                            (2026, "510104", 100000)])
def test_a_code_needs_four_digit_year_six_digit_admin_code_and_five_digit_sequence(year, admin, seq):
    with pytest.raises(ValueError):
        project_code(year, admin, seq)
