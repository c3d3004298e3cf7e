"""config: defaults, VISIO_* variables, the TOML file, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from visio.config import ConfigError, Settings, ensure_secrets, load_settings


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "visio.toml"
    path.write_text(text)
    return path


def test_defaults():
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.embedded_janus
    assert settings.janus_ws_port == 8988
    assert settings.max_frame_bytes == 65536
    assert settings.reconnect_grace_s == 30.0
    assert settings.chat_history_max == 1000


def test_sqlalchemy_url_defaults_to_sqlite_in_the_data_dir():
    assert load_settings().sqlalchemy_url == "sqlite+aiosqlite:///var/visio.db"
    assert (
        load_settings(data_dir="/srv/visio").sqlalchemy_url
        == "sqlite+aiosqlite:////srv/visio/visio.db"
    )


def test_database_url_wins_over_the_default():
    url = "postgresql+asyncpg://visio@db/visio"
    assert load_settings(database_url=url).sqlalchemy_url == url


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("VISIO_PORT", "9000")
    monkeypatch.setenv("VISIO_HOST", "127.0.0.1")
    monkeypatch.setenv("VISIO_JANUS_URLS", '["ws://10.0.0.5:8188", "ws://10.0.0.6:8188"]')
    monkeypatch.setenv("VISIO_TURN_SECRET", "t")
    monkeypatch.setenv("VISIO_RECONNECT_GRACE_S", "2.5")
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.janus_urls == ["ws://10.0.0.5:8188", "ws://10.0.0.6:8188"]
    assert not settings.embedded_janus
    assert settings.turn_secret == "t"
    assert settings.reconnect_grace_s == 2.5


def test_environment_variable_names_are_case_insensitive(monkeypatch):
    monkeypatch.setenv("visio_port", "9001")
    assert load_settings().port == 9001


def test_toml_file_named_by_visio_config(tmp_path, monkeypatch):
    path = write_toml(
        tmp_path,
        'port = 8443\njanus_urls = ["ws://10.0.0.5:8188"]\ndata_dir = "/srv/v"\n'
        'turn_urls = ["turn:turn.example.org:3478"]\n',
    )
    monkeypatch.setenv("VISIO_CONFIG", str(path))
    settings = load_settings()
    assert settings.port == 8443
    assert settings.janus_urls == ["ws://10.0.0.5:8188"]
    assert settings.data_dir == Path("/srv/v")
    assert settings.turn_urls == ["turn:turn.example.org:3478"]


def test_environment_wins_over_the_file_and_arguments_over_both(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_CONFIG", str(write_toml(tmp_path, 'port = 1111\nhost = "h"\n')))
    monkeypatch.setenv("VISIO_PORT", "2222")
    settings = load_settings()
    assert (settings.host, settings.port) == ("h", 2222)
    assert load_settings(port=3333).port == 3333


def test_unknown_key_in_the_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_CONFIG", str(write_toml(tmp_path, "prot = 8080\n")))
    with pytest.raises(ConfigError, match="prot"):
        load_settings()


def test_missing_config_file_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.toml"):
        load_settings()


def test_invalid_toml_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_CONFIG", str(write_toml(tmp_path, "port = = 3\n")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("VISIO_PORT", "abc", "port"),
        ("VISIO_PORT", "0", "port"),
        ("VISIO_PORT", "70000", "port"),
        ("VISIO_JANUS_WS_PORT", "-1", "janus_ws_port"),
        ("VISIO_JANUS_RTP_PORTS", "40000-20000", "janus_rtp_ports"),
        ("VISIO_JANUS_RTP_PORTS", "lots", "janus_rtp_ports"),
        ("VISIO_JANUS_RTP_PORTS", "20000-70000", "janus_rtp_ports"),
        ("VISIO_JANUS_DEBUG_LEVEL", "9", "janus_debug_level"),
        ("VISIO_LOG_FORMAT", "xml", "log_format"),
        ("VISIO_TURN_TTL_S", "10", "turn_ttl_s"),
        ("VISIO_MAX_PARTICIPANTS", "1", "max_participants"),
        ("VISIO_MAX_FRAME_BYTES", "10", "max_frame_bytes"),
        ("VISIO_RATE_LIMIT_PER_S", "0", "rate_limit_per_s"),
        ("VISIO_RECONNECT_GRACE_S", "soon", "reconnect_grace_s"),
    ],
)
def test_invalid_values_are_config_errors_naming_the_field(monkeypatch, variable, value, field):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("invalid configuration: ")
    assert f"{field}: " in message


def test_every_problem_is_listed(monkeypatch):
    monkeypatch.setenv("VISIO_PORT", "abc")
    monkeypatch.setenv("VISIO_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "port: " in message
    assert "log_format: " in message


def test_tls_cert_without_key_is_refused():
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_settings(tls_cert="/etc/ssl/visio.pem")
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_settings(tls_key="/etc/ssl/visio.key")


def test_tls_cert_with_key_is_accepted():
    settings = load_settings(tls_cert="/c.pem", tls_key="/k.pem")
    assert (settings.tls_cert, settings.tls_key) == ("/c.pem", "/k.pem")


def test_list_variable_that_is_not_json_is_a_config_error(monkeypatch):
    monkeypatch.setenv("VISIO_JANUS_URLS", "ws://10.0.0.5:8188")
    with pytest.raises(ConfigError, match="janus_urls"):
        load_settings()


def test_unknown_log_level_is_a_config_error(monkeypatch):
    monkeypatch.setenv("VISIO_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="log_level"):
        load_settings()


def test_embedded_janus_gets_fresh_secrets():
    first, second = Settings(), Settings()
    ensure_secrets(first)
    ensure_secrets(second)
    assert len(first.janus_api_secret) >= 24
    assert first.janus_admin_key
    assert first.janus_api_secret != second.janus_api_secret
    assert first.janus_api_secret != first.janus_admin_key


def test_operator_secrets_are_kept():
    settings = Settings(janus_api_secret="mine", janus_admin_key="ours")
    ensure_secrets(settings)
    assert (settings.janus_api_secret, settings.janus_admin_key) == ("mine", "ours")


def test_l8_remote_janus_nodes_need_their_secrets():
    """Remote nodes' secrets are neither invented nor left empty (audit L8)."""
    for secrets in ({}, {"janus_api_secret": "s"}, {"janus_admin_key": "k"}):
        settings = Settings(janus_urls=["wss://10.0.0.5:8989"], **secrets)
        with pytest.raises(ConfigError, match="janus_api_secret and janus_admin_key"):
            ensure_secrets(settings)
    settings = Settings(
        janus_urls=["wss://10.0.0.5:8989"], janus_api_secret="s", janus_admin_key="k"
    )
    ensure_secrets(settings)
    assert (settings.janus_api_secret, settings.janus_admin_key) == ("s", "k")


# -- where `visio transcribe` keeps the speech model ----------------------------------------


def test_transcribe_keeps_its_model_in_the_xdg_cache(tmp_path, monkeypatch):
    from visio.transcripts.command import models_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert models_dir(load_settings()) == tmp_path / "cache" / "visio" / "models"


@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_transcribe_falls_back_to_the_home_cache(tmp_path, monkeypatch, xdg):
    from visio.transcripts.command import models_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)  # the XDG spec: relative is ignored
    assert models_dir(load_settings()) == tmp_path / ".cache" / "visio" / "models"


def test_transcribe_uses_a_configured_data_dir_as_the_server_does(tmp_path, monkeypatch):
    from visio.transcripts.command import models_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert models_dir(load_settings(data_dir=tmp_path / "opt")) == tmp_path / "opt" / "models"
    monkeypatch.setenv("VISIO_DATA_DIR", "/srv/visio")
    assert models_dir(load_settings()) == Path("/srv/visio/models")
    monkeypatch.delenv("VISIO_DATA_DIR")
    monkeypatch.setenv("VISIO_CONFIG", str(write_toml(tmp_path, 'data_dir = "/srv/v"\n')))
    assert models_dir(load_settings()) == Path("/srv/v/models")
    monkeypatch.setenv("VISIO_CONFIG", str(write_toml(tmp_path, "port = 9000\n")))
    assert models_dir(load_settings()) == tmp_path / "cache" / "visio" / "models"


def test_an_empty_kept_session_secret_is_drawn_again(tmp_path):
    """Audit L12: a crash between creating the file and writing it left it empty, and
    login cookies were then signed with an empty key."""
    (tmp_path / "session_secret").write_text("")
    settings = Settings(data_dir=tmp_path)
    ensure_secrets(settings)
    kept = (tmp_path / "session_secret").read_text()
    assert len(settings.session_secret) >= 32 and kept == settings.session_secret
    assert (tmp_path / "session_secret").stat().st_mode & 0o077 == 0
    again = Settings(data_dir=tmp_path)
    ensure_secrets(again)
    assert again.session_secret == settings.session_secret


def test_short_session_secrets_are_refused(tmp_path):
    (tmp_path / "session_secret").write_text("short")
    with pytest.raises(ConfigError, match="shorter than 32 characters: delete it"):
        ensure_secrets(Settings(data_dir=tmp_path))
    with pytest.raises(ConfigError, match="session_secret must be 32 characters or more"):
        ensure_secrets(Settings(data_dir=tmp_path, session_secret="hunter2"))
