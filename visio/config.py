"""Settings: environment variables (VISIO_*) over an optional TOML file over defaults.

The config file is named by VISIO_CONFIG or `--config`; its keys are the field names
below (e.g. `port = 8080`, `janus_urls = ["ws://10.0.0.5:8188"]`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from visio.proxies.addresses import parse_network


class ConfigError(Exception):
    """The configuration cannot be used; the message says why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISIO_", extra="forbid")

    # HTTP
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str = Field("", description="Base URL people use, for links; derived if empty")
    tls_cert: str = ""
    tls_key: str = ""

    # Sign-in (OpenID Connect); empty issuer = no sign-in, everyone is a guest
    oidc_issuer: str = Field("", description="Issuer URL; its discovery document is used")
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid email profile"
    oidc_email_verified_by_issuer: bool = Field(
        False,
        description="Trust an email without email_verified: only for a provider whose "
        "emails are all verified and cannot be changed by their users",
    )
    session_secret: str = Field("", description="Signs login cookies; kept in data_dir if empty")
    session_ttl_s: int = Field(7 * 86400, ge=300)
    session_check_s: float = Field(
        30.0, gt=0, description="How often a live WebSocket checks its sign-in still holds"
    )
    cookie_secure: bool | None = Field(None, description="Secure cookies; default: HTTPS in use")
    guests_create_rooms: bool | None = Field(None, description="Default: when sign-in is off")

    # Storage
    data_dir: Path = Path("var")
    database_url: str = Field("", description="SQLAlchemy URL; SQLite in data_dir if empty")

    # Janus: empty list = start a local Janus (the embedded default)
    janus_urls: list[str] = []
    janus_api_secret: str = ""
    janus_admin_key: str = ""
    janus_binary: str = "/usr/bin/janus"
    janus_ws_port: int = Field(8988, ge=1, le=65535)  # not 8188: Debian's service
    janus_ice_interfaces: str = Field("", description="ICE enforce list (interfaces or IPs)")
    janus_ice_ignore: str = "vmnet"
    janus_public_ip: str = Field("", description="nat_1_1_mapping: public IP behind NAT")
    janus_rtp_ports: str = "20000-40000"
    janus_debug_level: int = Field(3, ge=0, le=7)
    janus_node_streams: int = Field(
        2000,
        ge=2,
        description="Streams a media node forwards at full load: past it, new meetings go "
        "elsewhere and a meeting spreads to another node (see docs/OPERATIONS.md, capacity)",
    )
    janus_event_loops: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Embedded Janus: media threads (event_loops); unset: half the cores, at "
        "least 1; 0 = Janus' own default, a thread per handle",
    )

    # Several server processes (empty: one process holds everything, the embedded default)
    redis_url: str = Field(
        "", description="redis://host:6379/0: rooms shared between server processes"
    )
    cluster_secret: str = Field(
        "", description="Signs messages between server processes (32+ characters)"
    )
    process_ttl_s: float = Field(
        3.0, ge=0.5, le=60, description="A process that stops beating is dead after this"
    )

    # TURN (coturn, use-auth-secret): time-limited credentials handed to clients
    turn_urls: list[str] = []
    turn_secret: str = ""
    turn_ttl_s: int = Field(86400, ge=60)
    stun_urls: list[str] = []

    # Meetings
    max_participants: int = Field(100, ge=2)
    reconnect_grace_s: float = Field(30.0, ge=0)
    chat_history_max: int = Field(1000, ge=0)
    chat_history_bytes: int = Field(
        256 * 1024, ge=0, description="Of the chat history, the newest this size goes to a joiner"
    )
    max_frame_bytes: int = Field(65536, ge=1024)
    ws_idle_timeout_s: float = Field(60.0, gt=0)
    ws_join_timeout_s: float = Field(
        30.0, gt=0, description="A WebSocket that has not sent join by then is closed (4408)"
    )
    max_connections: int = Field(
        10_000,
        ge=10,
        description="Connections this process serves at once (uvicorn limit_concurrency): "
        "beyond, 503. Keep it under the open-files limit",
    )
    max_connections_per_address: int = Field(
        2000,
        ge=1,
        description="Connections one address (an IPv6 /64) holds at once, times its "
        "limit_networks factor: a NAT's agents each hold one WebSocket",
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="A connection must send its first request's headers by then"
    )
    rate_limit_per_s: float = Field(20.0, gt=0)
    rate_limit_burst: int = Field(60, ge=1)
    room_video_bitrate: int = Field(1_500_000, ge=64_000)
    lobby_timeout_s: float = Field(300.0, gt=0)
    lobby_max_waiting: int = Field(200, ge=1, description="People waiting for one room")

    # Limits (docs/OPERATIONS.md, "Limits"): per person (the signed-in user, else the
    # browser's guest key), per client address (an IPv6 /64), and per server process
    joins_per_minute: int = Field(30, ge=1, description="Per person")
    lobby_requests_per_minute: int = Field(10, ge=1, description="Per person")
    room_creations_per_minute: int = Field(30, ge=1, description="Per person")
    address_joins_per_minute: int = Field(1000, ge=1, description="Per address: a NAT's agents")
    address_lobby_requests_per_minute: int = Field(200, ge=1, description="Per address")
    address_room_creations_per_minute: int = Field(300, ge=1, description="Per address")
    limit_networks: dict[str, float] = Field(
        {},
        description="CIDR -> multiple of the per-address limits for its addresses (0: none), "
        'e.g. {"198.51.100.0/28" = 20}: an administration\'s egress addresses',
    )
    max_joins_per_second: float = Field(
        100.0, gt=0, description="New joins per second this process takes; beyond: busy"
    )

    # Reverse proxies: whose word on the client's address counts
    trusted_proxies: list[str] = Field(
        [], description="CIDRs of reverse proxies whose X-Forwarded-For/Forwarded count"
    )
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = Field(
        "x-forwarded-for", description="The header the trusted proxies write"
    )
    proxy_protocol: bool = Field(
        False, description="Accept HAProxy's PROXY protocol (v1, v2) from trusted_proxies"
    )

    # Transcripts and recordings
    captures_dir: Path | None = Field(
        None,
        description="Where Janus writes recordings; data_dir/captures if empty. At scale: "
        "a folder every Janus node and transcription worker shares",
    )
    speech_model_dir: str = Field("", description="faster-whisper model; Whisper base if empty")
    speech_threads: int = Field(2, ge=1, le=64)
    diarizer: str = Field(
        "", description="'' (speaker embeddings), 'pyannote:CONFIG' or module:Class"
    )
    capture_max_tracks: int = Field(
        200, ge=1, description="Tracks one capture records; later publications are not"
    )
    capture_min_free_mb: int = Field(
        2048,
        ge=0,
        description="Free space captures_dir must keep: below it, no capture starts and "
        "running ones stop",
    )
    capture_video: bool = Field(
        False,
        description="Keep the video Janus records with a capture (nothing uses it); off: "
        "emptied as it is written, deleted when the meeting ends",
    )
    retention_days: float = Field(
        30.0, gt=0, description="Transcripts and recordings kept this long"
    )
    room_retention_days: float = Field(
        90.0, ge=0, description="Rooms that are not permanent go after this long unused (0: kept)"
    )
    ownerless_room_retention_days: float = Field(
        7.0, ge=0, description="The same for rooms without an owner, a guest's (0: kept)"
    )
    transcription_memory_mb: int = Field(
        8192,
        ge=0,
        description="Address space a transcription job may take (RLIMIT_AS); 0: no cap "
        "(needed for a GPU, whose driver reserves much address space)",
    )
    transcription_attempts: int = Field(3, ge=1, description="Tries of a job cut by a restart")
    job_queue: Literal["embedded", "procrastinate"] = Field(
        "embedded",
        description="'embedded': the server runs the jobs; 'procrastinate': a queue in the "
        "PostgreSQL database, run by `visio worker` processes",
    )

    # Live captions
    captions_engine: str = Field("", description="'' (Whisper, re-decoding) or module:Class")
    captions_slots: int = Field(
        4, ge=1, le=64, description="Speakers recognised at once (one thread each)"
    )
    captions_languages: list[str] = Field(
        ["fr", "en"], description="What a room in 'auto' is heard as (empty: any language)"
    )
    captions_bind_host: str = Field("127.0.0.1", description="Where caption audio is received")
    captions_forward_host: str = Field(
        "127.0.0.1", description="The address Janus sends caption audio to (this host)"
    )

    # SIP dial-in (visio.sip): phones call the gateway and enter a room's PIN
    sip_enabled: bool = Field(False, description="Answer SIP calls (UDP) on sip_port")
    sip_host: str = Field("", description="Address the SIP gateway binds; host if empty")
    sip_port: int = Field(5060, ge=1, le=65535)
    sip_domain: str = Field(
        "", description="Domain of the dial-in SIP URI shown to people; sip_host if empty"
    )
    sip_public_ip: str = Field(
        "", description="Address written in SDP and Contact behind NAT; the bound one if empty"
    )
    sip_phone_number: str = Field(
        "", description="A phone number that reaches the gateway (shown in invitations)"
    )
    sip_rtp_ports: str = Field("41000-41999", description="UDP ports for phone calls' audio")
    sip_max_calls: int = Field(30, ge=1, le=32, description="Phone calls at once")
    sip_pin_tries_per_hour: int = Field(
        20, ge=1, description="Wrong PINs one caller address may enter per hour"
    )

    # Metrics
    metrics_token: str = Field(
        "",
        description="Bearer token Prometheus sends to /metrics; empty: loopback only",
    )

    # Logs
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="'auto': text on a terminal, JSON lines otherwise"
    )

    # Where people report vulnerabilities in this deployment (served as security.txt)
    security_contact: str = Field(
        "",
        description="mailto:security@example.org or an https:// page; "
        "/.well-known/security.txt (RFC 9116) names it",
    )

    # Audit trail (visio.audit): security events as JSON lines, apart from the logs
    audit_log: str = Field(
        "",
        description="A folder for one file per UTC day (audit-YYYY-MM-DD.jsonl), 'stderr' "
        "or 'off'; data_dir/audit if empty",
    )
    audit_retention_days: int = Field(
        180, ge=1, description="Audit files are deleted once this many days old"
    )

    # Process
    allow_root: bool = Field(
        False, description="Let `visio serve` and `visio worker` run as root (not advised)"
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            _network(cidr)
        return value

    @field_validator("limit_networks")
    @classmethod
    def _limit_networks(cls, value: dict[str, float]) -> dict[str, float]:
        for cidr, factor in value.items():
            _network(cidr)
            if factor < 0:
                raise ValueError(f"{cidr}: a multiple of the per-address limits, 0 or more")
        return value

    @field_validator("janus_rtp_ports", "sip_rtp_ports")
    @classmethod
    def _ports_range(cls, value: str) -> str:
        low, _, high = value.partition("-")
        if not (low.isdigit() and high.isdigit() and 0 < int(low) < int(high) < 65536):
            raise ValueError("must look like 20000-40000")
        return value

    @property
    def sign_in_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def https(self) -> bool:
        """People reach Visio over HTTPS: its own TLS, or a TLS proxy at public_url."""
        return self.public_url.startswith("https://") or bool(self.tls_cert)

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.https

    @property
    def anyone_creates_rooms(self) -> bool:
        if self.guests_create_rooms is not None:
            return self.guests_create_rooms
        return not self.sign_in_enabled

    @property
    def capture_root(self) -> Path:
        return self.captures_dir or self.data_dir / "captures"

    @property
    def models_dir(self) -> Path:
        """Where the default speech model is assembled from its PyPI wheels."""
        return self.data_dir / "models"

    @property
    def data_dir_configured(self) -> bool:
        """Whether data_dir was set (config file, environment, option), not defaulted."""
        return "data_dir" in self.model_fields_set

    @property
    def embedded_janus(self) -> bool:
        return not self.janus_urls

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'visio.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


def _network(cidr: str) -> None:
    try:
        parse_network(cidr)
    except ValueError:
        raise ValueError(f"{cidr!r} is not an address or a CIDR network") from None


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by VISIO_CONFIG, if any."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("VISIO_CONFIG")
        if not path:
            return {}
        try:
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation failures into a ConfigError."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        settings = Settings(**overrides)
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("tls_cert and tls_key go together")
    if settings.oidc_issuer and not settings.oidc_client_id:
        raise ConfigError("oidc_issuer needs oidc_client_id (and usually oidc_client_secret)")
    if settings.public_url and not settings.public_url.startswith(("https://", "http://")):
        raise ConfigError("public_url must start with https:// (or http://)")
    if settings.security_contact and not settings.security_contact.startswith(
        ("mailto:", "https://", "tel:")
    ):
        raise ConfigError("security_contact must be a mailto:, https:// or tel: URI")
    if settings.oidc_issuer and not settings.public_url:
        raise ConfigError(
            "oidc_issuer needs public_url (e.g. https://visio.example.org): sign-in sends "
            "people back there, and cookies are Secure and HSTS is sent when it is https; "
            "never derived from a request's Host header, which the client writes"
        )
    if settings.proxy_protocol and not settings.trusted_proxies:
        raise ConfigError("proxy_protocol needs trusted_proxies: the proxies it comes from")
    if settings.proxy_protocol and settings.tls_cert:
        raise ConfigError(
            "proxy_protocol with tls_cert is not supported: let the proxy terminate TLS"
        )
    if settings.sip_enabled and settings.tls_cert:
        raise ConfigError(
            "sip_enabled with tls_cert is not supported: the SIP gateway joins meetings "
            "through the server's own WebSocket on its listening address; let a proxy "
            "terminate TLS"
        )
    if settings.job_queue == "procrastinate" and not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            "job_queue = procrastinate needs a PostgreSQL database_url "
            "(postgresql+asyncpg://user:password@host/database): the queue lives there"
        )
    return settings


def check_cluster(settings: Settings) -> None:
    """A server process among several (redis_url) shares Redis, a database and nodes."""
    if len(settings.cluster_secret) < 32:
        raise ConfigError(
            "redis_url needs cluster_secret (32 characters or more, the same on every "
            "server process): it signs the messages between them"
        )
    if not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            "redis_url (several server processes) needs a database they share: set "
            "database_url to PostgreSQL (postgresql+asyncpg://user:password@host/database)"
        )
    if not settings.janus_urls:
        raise ConfigError(
            "redis_url (several server processes) needs janus_urls: media nodes they "
            "share (each node's Janus with reclaim_session_timeout set: see `visio node`)"
        )
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis_url must start with redis://, rediss:// or unix://")


def user_cache_dir() -> Path:
    """Visio's folder in the user's cache (XDG): $XDG_CACHE_HOME/visio, else ~/.cache/visio."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):  # the XDG spec: a relative value is ignored
        return Path(base) / "visio"
    try:
        return Path.home() / ".cache" / "visio"
    except RuntimeError as exc:
        raise ConfigError("no home folder to cache the speech model in: set HOME") from exc


def ensure_secrets(settings: Settings) -> None:
    """The embedded Janus gets fresh secrets each start unless the operator set them.

    The session secret must outlive restarts (sign-ins in progress): when not set, it is
    drawn once and kept in data_dir, readable by the server's user only. Several server
    processes must share it (a sign-in may start on one and come back to another): it is
    then derived from the cluster secret they share.
    """
    if not settings.session_secret and settings.redis_url:
        settings.session_secret = hmac.new(
            settings.cluster_secret.encode(), b"visio session secret", hashlib.sha256
        ).hexdigest()
    if not settings.session_secret:
        settings.session_secret = _kept_secret(settings.data_dir / "session_secret")
    elif len(settings.session_secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"session_secret must be {MIN_SECRET_CHARS} characters or more")
    if settings.embedded_janus:
        settings.janus_api_secret = settings.janus_api_secret or secrets.token_urlsafe(24)
        settings.janus_admin_key = settings.janus_admin_key or secrets.token_urlsafe(24)
    elif not settings.janus_api_secret or not settings.janus_admin_key:
        # Anyone who reaches a node's API could otherwise run it (audit L8).
        raise ConfigError(
            "janus_urls (remote media nodes) need janus_api_secret and janus_admin_key: "
            "the api_secret and VideoRoom admin_key those nodes were started with"
        )


MIN_SECRET_CHARS = 32


def _kept_secret(path: Path) -> str:
    """The secret kept in `path`, drawn and written there the first time. Written to a
    temporary file then renamed: a crash never leaves an empty secret behind (a cookie
    signed with an empty key would be forged by anyone)."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if len(value) >= MIN_SECRET_CHARS:
        return value
    if value:
        raise ConfigError(
            f"{path} holds a secret shorter than {MIN_SECRET_CHARS} characters: delete it "
            "to draw a new one (people will have to sign in again)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".session_secret-")
    with os.fdopen(fd, "w") as handle:  # mkstemp: 0600
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return value
