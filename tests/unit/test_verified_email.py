"""Audit M3: room membership rests on the email claim, so only a verified one counts."""

from __future__ import annotations

import pytest

from visio.auth.oidc import verified_email


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "director@agency.example"},  # no email_verified: not vouched for
        {"email": "director@agency.example", "email_verified": False},
        {"email": "director@agency.example", "email_verified": "false"},  # a truthy string
        {"email": "director@agency.example", "email_verified": "true"},  # not the boolean
        {"email": "\u212aate@agency.example", "email_verified": True},  # lower() gives "kate"
        {"email": ["director@agency.example"], "email_verified": True},
        {"email": "nobody", "email_verified": True},
        {"email_verified": True},
    ],
)
def test_an_email_the_provider_does_not_vouch_for_is_not_used(claims):
    assert verified_email(claims) is None


def test_a_verified_email_is_used():
    claims = {"email": "Kate@Agency.example", "email_verified": True}
    assert verified_email(claims) == "Kate@Agency.example"


def test_an_operator_may_trust_a_provider_that_sends_no_flag():
    assert verified_email({"email": "kate@agency.example"}, True) == "kate@agency.example"
    # an explicit "no" still wins
    assert verified_email({"email": "kate@agency.example", "email_verified": False}, True) is None
