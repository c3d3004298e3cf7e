"""visio.testing.link.Conditions: what a shaped link is told must make sense."""

from __future__ import annotations

import pytest

from visio.testing.link import Conditions


@pytest.mark.parametrize(
    "fields",
    [
        {"loss": 5},  # a share, not a percentage
        {"loss": -0.1},
        {"delay_ms": -1},
        {"jitter_ms": -1},
        {"queue_ms": -1},
        {"rate_kbit": 0},
    ],
)
def test_conditions_that_make_no_sense_are_refused(fields):
    with pytest.raises(ValueError):
        Conditions(**fields)


def test_a_clean_link_is_the_default():
    clean = Conditions()
    assert (clean.loss, clean.delay_ms, clean.rate_kbit, clean.down) == (0, 0, None, False)
