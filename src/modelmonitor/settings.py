"""Typed settings: defaults < YAML file (``--config``) < ``MODELMONITOR_*`` env < CLI flags.

Everything is validated at start-up; a bad value stops the process with a message
naming the field, instead of failing at the first request.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from modelmonitor.protocols.config import ConsumerConfig, ModelPrice, ProtocolName
from modelmonitor.quality.config import DriftConfig, SamplingConfig
from modelmonitor.timeparse import parse_duration

__all__ = [
    "AuthConfig",
    "ConfigError",
    "HostPort",
    "ListenTLSConfig",
    "OIDCConfig",
    "ProxyLimits",
    "ServiceConfig",
    "Settings",
    "TLSConfig",
    "check_services",
    "format_validation_error",
    "load_settings",
    "parse_host_port",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ConfigError(ValueError):
    """A configuration problem, already phrased for the user (one line per problem)."""


def parse_host_port(value: str) -> tuple[str, int]:
    """``"0.0.0.0:9090"``, ``":9090"`` (all interfaces), ``"[::1]:9090"`` or ``"9090"``."""
    text = value.strip()
    if text.isdigit():
        host, port_text = "0.0.0.0", text
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"{value!r} is not HOST:PORT")
        host = host.strip("[]") or "0.0.0.0"
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


def _check_host_port(value: Any) -> str:
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("expected HOST:PORT")
    host, port = parse_host_port(value)
    return f"{host}:{port}"


def _check_duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 15m, 1h or 7d")


HostPort = Annotated[str, BeforeValidator(_check_host_port)]
Duration = Annotated[float, BeforeValidator(_check_duration), Field(ge=0)]


def _check_upstream(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a URL such as http://127.0.0.1:8080")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{value!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


UpstreamURL = Annotated[str, BeforeValidator(_check_upstream)]


class TLSConfig(BaseModel):
    """How the proxy talks TLS to an ``https://`` upstream."""

    model_config = ConfigDict(extra="forbid")

    verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None


class ListenTLSConfig(BaseModel):
    """TLS on the proxy's own ports: clients connect with ``https://`` (and ``wss://``)."""

    model_config = ConfigDict(extra="forbid")

    #: PEM certificate chain (the key may be in the same file).
    cert_file: FilePath
    key_file: FilePath | None = None
    #: Require client certificates signed by this CA (mutual TLS).
    client_ca_file: FilePath | None = None

    @model_validator(mode="after")
    def _check(self) -> ListenTLSConfig:
        self.context()  # unreadable or mismatched files fail here, at start-up
        return self

    def context(self) -> ssl.SSLContext:
        """The server-side TLS context these files describe."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as exc:
            raise ValueError(f"cannot use cert_file/key_file: {exc.reason or exc}") from None
        if self.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except ssl.SSLError as exc:
                raise ValueError(f"cannot use client_ca_file: {exc.reason or exc}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class ProxyLimits(BaseModel):
    """What the proxy accepts from clients and upstreams before it answers an error itself.

    Every limit is checked without slowing ordinary requests down; each refusal is
    counted per kind (see docs/production.md, "The proxy's edge").
    """

    model_config = ConfigDict(extra="forbid")

    #: Request line plus headers, in bytes (431 beyond).
    max_head_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    #: Header fields in one request (431 beyond).
    max_headers: int = Field(default=100, ge=8, le=10_000)
    #: The request target (path and query), in bytes (414 beyond).
    max_url_bytes: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    #: Total time to receive a request head once its first byte arrived (408 beyond);
    #: not reset by each byte, so a head sent a byte at a time cannot hold a connection.
    header_timeout_seconds: Duration = Field(default=30.0, gt=0)
    #: Keep-alive connections with no request for this long are closed.
    idle_timeout_seconds: Duration = Field(default=75.0, gt=0)
    #: A client that reads nothing of its response for this long is cut off.
    write_timeout_seconds: Duration = Field(default=60.0, gt=0)
    #: Status line plus headers of an upstream response, in bytes (502 beyond).
    max_upstream_head_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: Distinct route templates per service; later ones are counted under ``{other}``.
    max_routes_per_service: int = Field(default=1_000, ge=10, le=1_000_000)

    @model_validator(mode="after")
    def _check(self) -> ProxyLimits:
        if self.max_url_bytes > self.max_head_bytes:
            raise ValueError("max_url_bytes must not exceed max_head_bytes")
        return self


class OtlpConfig(BaseModel):
    """Export a span per request and the request metrics to an OpenTelemetry collector."""

    model_config = ConfigDict(extra="forbid")

    #: ``http(s)://host:4318`` (OTLP/HTTP, protobuf) or ``grpc(s)://host:4317`` (OTLP/gRPC).
    endpoint: str
    #: Sent with every export (an API key for a hosted collector): kept out of logs.
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = "modelmonitor"
    traces: bool = True
    metrics: bool = True
    metrics_interval_seconds: Duration = Field(default=10.0, gt=0)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.netloc:
            raise ValueError("must be http(s)://host:port or grpc(s)://host:port")
        return value


class ServiceConfig(BaseModel):
    """One monitored model API."""

    model_config = ConfigDict(extra="forbid")

    name: str
    upstream: UpstreamURL
    #: Own listening address; when unset the service shares the main ``listen`` port.
    listen: HostPort | None = None
    #: Requests whose path starts with this prefix go to this service (shared port).
    path_prefix: str | None = None
    strip_prefix: bool = True
    #: User route templates such as ``/v1/models/{model}/predict``; they win over
    #: the automatic id collapsing.
    route_patterns: list[str] = Field(default_factory=list)
    model_header: str = "X-Model-Name"
    #: Top-level JSON field of the request body naming the model (e.g. ``model``);
    #: read from the first 64 KiB of a JSON body only.
    model_json_field: str | None = None
    #: What the service speaks (``auto`` recognises every known protocol by its
    #: paths; ``none`` turns recognition off). See docs/models.md.
    protocol: ProtocolName = ProtocolName.AUTO
    #: The model a single-model server serves (MLflow, BentoML), for requests that
    #: do not name one, and its version.
    model: str | None = None
    model_version: str | None = None
    #: How callers are told apart (headers, hashed API keys, trusted proxies).
    consumers: ConsumerConfig = Field(default_factory=ConsumerConfig)
    timeout_seconds: Duration = 60.0
    connect_timeout_seconds: Duration = 5.0
    preserve_host: bool = False
    forwarded_headers: bool = True
    tls: TLSConfig = Field(default_factory=TLSConfig)
    #: W3C trace context: continue the caller's ``traceparent`` (or start a trace) and
    #: forward the proxy's own span as the parent. Opt-in: it changes a request header.
    propagate_trace: bool = False
    #: Opt-in payload sampling for data quality and drift (docs/drift.md).
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)

    @model_validator(mode="after")
    def _check(self) -> ServiceConfig:
        if not _NAME.match(self.name):
            raise ValueError(
                "name must be 1-63 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if self.path_prefix is not None:
            if not self.path_prefix.startswith("/") or self.path_prefix == "/":
                raise ValueError("path_prefix must start with '/' and not be '/' alone")
            self.path_prefix = self.path_prefix.rstrip("/")
        for pattern in self.route_patterns:
            if not pattern.startswith("/"):
                raise ValueError(f"route pattern {pattern!r} must start with '/'")
        return self


RoleName = Literal["viewer", "editor", "admin"]


def _check_network(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IP address or network such as 10.0.0.0/8")
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network") from None


Network = Annotated[str, BeforeValidator(_check_network)]


class OIDCConfig(BaseModel):
    """Log in through an OpenID Connect provider (authorization code flow with PKCE)."""

    model_config = ConfigDict(extra="forbid")

    #: The provider's issuer URL; its ``/.well-known/openid-configuration`` is read.
    issuer: UpstreamURL
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    #: Claim naming the person (the first present of these is used).
    username_claims: list[str] = Field(
        default_factory=lambda: ["email", "preferred_username", "sub"]
    )
    groups_claim: str = "groups"
    #: Where the provider sends the browser back; default: this API's
    #: ``/api/v1/auth/oidc/callback`` on the host the browser used.
    redirect_url: UpstreamURL | None = None
    #: Label of the dashboard's sign-in button.
    display_name: str = "single sign-on"

    @model_validator(mode="after")
    def _check(self) -> OIDCConfig:
        import importlib.util

        if not all(importlib.util.find_spec(name) for name in ("authlib", "joserfc")):
            raise ValueError(
                "OIDC needs authlib and joserfc: pip install 'modelmonitor[production]'"
            )
        return self


class AuthConfig(BaseModel):
    """Who may use the API and dashboard, and how they prove it. See docs/security.md."""

    model_config = ConfigDict(extra="forbid")

    #: Host names (``Host`` header) the API answers besides loopback names and the
    #: address it binds; ``*`` accepts any (not recommended: DNS rebinding).
    allowed_hosts: list[str] = Field(default_factory=list)
    #: Other origins (``https://ops.example.com``) allowed to call the API from a
    #: browser (CORS) and to open the WebSocket. Same-origin is always allowed.
    allowed_origins: list[str] = Field(default_factory=list)
    #: A session ends this long after login, whatever happens.
    session_ttl: Duration = Field(default=parse_duration("12h"), gt=0)
    #: ... or after this long without a request.
    session_idle_timeout: Duration = Field(default=parse_duration("30m"), gt=0)
    #: Failed logins allowed per user name and per source address in ``login_window``.
    login_attempts: int = Field(default=5, ge=1, le=1000)
    login_window: Duration = Field(default=parse_duration("15m"), gt=0)
    audit_retention: Duration = Field(default=parse_duration("365d"), gt=0)
    #: Reverse proxies whose ``X-Forwarded-For``/``-Proto`` (and, with
    #: ``proxy_auth``, user headers) are believed. Nobody else's are.
    trusted_proxies: list[Network] = Field(default_factory=list)
    #: Accept oauth2-proxy style user headers from ``trusted_proxies``.
    proxy_auth: bool = False
    proxy_user_header: str = "X-Forwarded-User"
    proxy_email_header: str = "X-Forwarded-Email"
    proxy_groups_header: str = "X-Forwarded-Groups"
    #: SSO group -> role; a person in several groups gets the highest role.
    group_roles: dict[str, RoleName] = Field(default_factory=dict)
    #: Role of SSO people in no mapped group (none: they are refused).
    default_sso_role: RoleName | None = None
    oidc: OIDCConfig | None = None
    #: Serve the API beyond loopback with no authentication (``--insecure-no-auth``).
    insecure_no_auth: bool = False

    @model_validator(mode="after")
    def _check(self) -> AuthConfig:
        if self.proxy_auth and not self.trusted_proxies:
            raise ValueError("proxy_auth needs trusted_proxies (the proxies' addresses)")
        for origin in self.allowed_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"allowed origin {origin!r} must look like https://host[:port]")
        return self

    @property
    def sso(self) -> bool:
        return self.proxy_auth or self.oidc is not None


class Settings(BaseSettings):
    """All of ModelMonitor's settings. See the README's configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix="MODELMONITOR_", extra="forbid", env_nested_delimiter="__"
    )

    #: Shorthand for a single service: the upstream model API's URL.
    target: UpstreamURL | None = None
    #: Name of the service made from ``target``.
    target_name: str = "default"
    listen: HostPort = "0.0.0.0:9090"
    #: Serve the proxy ports over TLS (every listener, shared or a service's own).
    listen_tls: ListenTLSConfig | None = None
    api: HostPort = "127.0.0.1:8000"
    #: ``GET /health`` for processes without the API (``modelmonitor proxy``/``worker``).
    health_listen: HostPort | None = None
    data_dir: Path = Path(".modelmonitor")
    broker_url: str = "memory://"
    database_url: str | None = None
    cache_url: str = "memory://"
    services: list[ServiceConfig] = Field(default_factory=list)
    #: An admin bearer token for automation (``MODELMONITOR_ADMIN_TOKEN``); compared in
    #: constant time, never stored or logged.
    admin_token: SecretStr | None = Field(default=None, min_length=24)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    #: Limits at the proxy's edge (request and upstream heads, timeouts, routes).
    proxy_limits: ProxyLimits = Field(default_factory=ProxyLimits)

    # Capture and shipping (proxy side).
    buffer_capacity: int = Field(default=100_000, ge=100)
    batch_max_events: int = Field(default=2_000, ge=1, le=100_000)
    flush_interval_seconds: Duration = 0.1
    #: Bytes of undeliverable batches a proxy may keep on disk under ``data_dir/spool``
    #: while the broker is away (0: memory only).
    spool_max_bytes: int = Field(default=0, ge=0)

    # Model-aware monitoring (docs/models.md).
    #: US dollars per million tokens per model; merged over the bundled table.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    #: Start from the bundled price table (``false``: only ``prices`` count).
    default_prices: bool = True
    #: Secret for hashing API keys into consumer names; when unset, one is made and
    #: kept in ``data_dir/consumer-secret``. Give every proxy the same one.
    consumer_secret: SecretStr | None = None
    #: Seals the credentials of channels added through the API in the store. Give every
    #: API replica and worker the same one; else ``data_dir/secret-key`` (one machine).
    secret_key: SecretStr | None = None
    #: Bytes of each LLM request and JSON answer kept for reading tokens and model.
    llm_inspect_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: Distinct models and consumers tracked per service; more fold into ``other``.
    max_models_per_service: int = Field(default=50, ge=1, le=10_000)
    max_consumers_per_service: int = Field(default=200, ge=1, le=100_000)

    # Pipeline and API.
    ws_interval_seconds: Duration = 1.0
    retention_raw: Duration = parse_duration("7d")
    #: Retention of the minute rollup tier (the name predates the tiers).
    retention_rollups: Duration = parse_duration("90d")
    retention_rollups_hour: Duration = parse_duration("400d")
    retention_rollups_day: Duration = parse_duration("1825d")
    #: TimescaleDB only: compress raw-event chunks older than this (0 = never).
    timescale_compress_after: Duration = parse_duration("7d")
    #: Sampled payloads are profiled per bucket of this length (drift windows merge them).
    quality_bucket_seconds: Duration = Field(default=60.0, ge=1.0, le=3600.0)
    max_history_points: int = Field(default=1_000, ge=10, le=100_000)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Alert rules from the config file (validated by the alerting package).
    alert_rules: list[dict[str, Any]] = Field(default_factory=list)
    #: Channel name -> settings with a ``type`` (email, slack, webhook, alertmanager,
    #: apprise); validated by the alerting package. See docs/alerting.md.
    notification_channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    alert_evaluation_interval_seconds: Duration = Field(default=5.0, gt=0, le=300)
    #: Anomaly detection: one point per series every step, from the 1-minute window.
    anomaly_step_seconds: Duration = Field(default=60.0, ge=1, le=3600)
    #: The calibration window of each detector, in points (also the history it warms from).
    anomaly_learning_period: int = Field(default=600, ge=10, le=100_000)
    #: How long scored points are kept (for the historical API).
    anomaly_retention: Duration = Field(default=parse_duration("7d"), gt=0)
    #: OpenTelemetry export (from the workers): None turns it off.
    otlp: OtlpConfig | None = None
    #: How often proxies read the service catalog (services added through the API);
    #: 0 turns run-time service changes off.
    catalog_poll_seconds: Duration = Field(default=2.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        names = [service.name for service in self.services]
        if self.target and self.target_name in names:
            raise ValueError(f"target_name {self.target_name!r} is also a service name")
        check_services(self.effective_services)
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'modelmonitor.db'}"

    @property
    def effective_services(self) -> list[ServiceConfig]:
        """``services`` plus the one made from ``target``, if any."""
        services = list(self.services)
        if self.target:
            services.insert(0, ServiceConfig(name=self.target_name, upstream=self.target))
        return services


def check_services(services: list[ServiceConfig]) -> None:
    """Raise ``ValueError`` unless the services can be served together: unique names,
    at most one without a path prefix on each port, no path prefix used twice there."""
    names = [service.name for service in services]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"service names must be unique: {', '.join(sorted(duplicates))}")
    main_port_plain = [s.name for s in services if s.listen is None and s.path_prefix is None]
    if len(main_port_plain) > 1:
        raise ValueError(
            "only one service may take the main listen port without a path_prefix: "
            + ", ".join(main_port_plain)
        )
    taken: dict[tuple[str | None, str | None], str] = {}
    for service in services:
        key = (service.listen, service.path_prefix)
        if key in taken:
            where = service.listen or "the main listen port"
            what = f"path_prefix {service.path_prefix}" if service.path_prefix else "no path_prefix"
            raise ValueError(
                f"services {taken[key]!r} and {service.name!r} both listen on {where} with {what}"
            )
        taken[key] = service.name


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def format_validation_error(error: ValidationError, source: str = "") -> str:
    """One line per problem: ``services.0.upstream: 'ftp://x' must start with http://``."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{source}{where}: {message}")
    return "\n".join(lines)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, a YAML file, the environment and explicit overrides.

    Overrides that are ``None`` are ignored (so unset CLI flags fall through).
    Raises :class:`ConfigError` with one line per problem.
    """
    yaml_data = _read_yaml(Path(config_file)) if config_file is not None else {}
    source = f"{config_file}: " if config_file is not None else ""

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _YamlSource(settings_cls, yaml_data))

    try:
        return _Loaded(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
