"""The SIP gateway's pure parts: caller names, the wrong-PIN budget, the phone's mix."""

from __future__ import annotations

import numpy as np
import pytest

from visio.config import ConfigError, Settings, load_settings
from visio.sip.audio import CATCH_UP, PHONE_CHUNK, PROMPT_SOURCE, Mixer, down, up
from visio.sip.gateway import WRONG_PIN_WINDOW_S, WrongPins, phone_name, server_url


def test_a_caller_is_shown_by_the_last_two_digits_of_their_number():
    assert phone_name("<sip:+33612345642@pbx.example.org>") == "Phone …42"
    assert phone_name('"Front desk" <sip:0142@10.0.0.1;user=phone>') == "Phone …42"
    assert phone_name("<sip:anonymous@anonymous.invalid>") == "Phone"


def test_wrong_pins_block_a_caller_for_an_hour_only():
    pins = WrongPins(per_hour=3)
    for t in (0.0, 10.0, 20.0):
        assert not pins.blocked("192.0.2.7", "sip:01@x", now=t)
        pins.add("192.0.2.7", "sip:01@x", now=t)
    assert pins.blocked("192.0.2.7", "sip:01@x", now=30.0)
    assert not pins.blocked("192.0.2.7", "sip:02@x", now=30.0)  # another caller on the trunk
    assert not pins.blocked("192.0.2.8", "sip:01@x", now=30.0)
    assert not pins.blocked("192.0.2.7", "sip:01@x", now=WRONG_PIN_WINDOW_S + 0.5)


def test_wrong_pins_from_many_numbers_block_their_address():
    pins = WrongPins(per_hour=2)
    for n in range(2 * WrongPins.ADDRESS_FACTOR):
        pins.add("192.0.2.7", f"sip:{n}@x", now=float(n))
    assert pins.blocked("192.0.2.7", "sip:new@x", now=100.0)
    assert not pins.blocked("192.0.2.9", "sip:new@x", now=100.0)


def test_the_mix_sums_sources_and_clips():
    mixer = Mixer()
    mixer.push("a", np.full(PHONE_CHUNK + 10, 20000, np.int16))  # 10 samples wait for more
    mixer.push("b", np.full(PHONE_CHUNK, 20000, np.int16))
    assert (mixer.pull() == 32767).all()
    assert (mixer.pull() == 0).all()  # "a"'s 10 samples are not a whole chunk yet


def test_a_late_source_catches_up_but_a_prompt_plays_whole():
    mixer = Mixer()
    mixer.push("a", np.ones(PHONE_CHUNK * (CATCH_UP + 5), np.int16))
    prompt = np.ones(PHONE_CHUNK * (CATCH_UP + 5), np.int16)
    mixer.queue_unbounded(PROMPT_SOURCE, prompt)
    pulls = 0
    while mixer.queued_s(PROMPT_SOURCE) > 0:
        mixer.pull()
        pulls += 1
    assert pulls == CATCH_UP + 5
    assert mixer.queued_s("a") == 0


def test_resampling_keeps_length_and_level():
    tone = (np.sin(np.arange(PHONE_CHUNK * 3) / 10) * 10000).astype(np.int16)
    assert len(up(tone)) == 3 * len(tone)
    assert len(down(up(tone))) == len(tone)
    assert np.abs(down(up(tone)).astype(int) - tone).max() < 600  # a third of a sample late


def test_the_gateway_joins_through_the_address_the_server_listens_on():
    assert server_url(Settings(host="0.0.0.0", port=8080)) == "http://127.0.0.1:8080"
    assert server_url(Settings(host="10.0.0.5", port=9000)) == "http://10.0.0.5:9000"


def test_the_gateway_needs_a_plain_listening_address():
    with pytest.raises(ConfigError, match="sip_enabled with tls_cert"):
        load_settings(sip_enabled=True, tls_cert="/c.pem", tls_key="/k.pem")
    with pytest.raises(ConfigError, match="sip_rtp_ports"):
        load_settings(sip_rtp_ports="5000")


def test_the_dial_in_uri_names_a_host_people_can_reach():
    from visio.api import sip_uri

    assert sip_uri(Settings(sip_domain="sip.example.org"), "x") == "sip:visio@sip.example.org"
    assert sip_uri(Settings(host="0.0.0.0", sip_port=5070), "visio.example.org") == (
        "sip:visio@visio.example.org:5070"
    )
    assert sip_uri(Settings(host="10.0.0.5"), "visio.example.org") == "sip:visio@10.0.0.5"
