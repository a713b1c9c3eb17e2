"""``ModelAPIMonitor``: the brief's Python API, on top of :mod:`modelmonitor.runtime`.

monitor = ModelAPIMonitor({
    "target_host": "127.0.0.1", "target_port": 8080,
    "monitoring_port": 9090, "rabbitmq_url": "amqp://localhost:5672",
})
await monitor.start_monitoring()
await monitor.configure({"thresholds": {"response_time_ms": 1000, "error_rate_percent": 5.0},
                         "alert_channels": ["email", "slack", "webhook"]})
...
await monitor.stop_monitoring()
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from modelmonitor.alerts import service as alert_service
from modelmonitor.alerts.configure import rules_from_configure
from modelmonitor.runtime import Runtime
from modelmonitor.settings import ConfigError, Settings, load_settings

__all__ = ["ModelAPIMonitor"]

_KNOWN_KEYS = {
    "target_host",
    "target_port",
    "target_scheme",
    "target_url",
    "service_name",
    "monitoring_host",
    "monitoring_port",
    "api_host",
    "api_port",
    "rabbitmq_url",
    "database_url",
    "redis_url",
    "data_dir",
    "config_file",
    "notification_channels",
    "alert_rules",
    "proxy_process",
}


class ModelAPIMonitor:
    """Monitor one model API from Python: pipeline and API in this process; the proxy
    here too, or (``"proxy_process": True``) in a child process of its own, as
    ``modelmonitor up`` runs it, so this program's event loop never slows a request."""

    def __init__(self, config: dict[str, Any]) -> None:
        unknown = sorted(set(config) - _KNOWN_KEYS)
        if unknown:
            raise ConfigError(f"unknown ModelAPIMonitor option(s): {', '.join(unknown)}")
        proxy_process = config.get("proxy_process", False)
        if not isinstance(proxy_process, bool):
            raise ConfigError("proxy_process must be true or false")
        self._proxy_process = proxy_process
        self.settings = self._settings(config)
        self._runtime: Runtime | None = None
        self._alert_configs: list[dict[str, Any]] = []

    @staticmethod
    def _settings(config: dict[str, Any]) -> Settings:
        target = config.get("target_url")
        if target is None:
            if "target_host" not in config:
                raise ConfigError("target_host (or target_url) is required")
            scheme = config.get("target_scheme", "http")
            port = config.get("target_port")
            target = f"{scheme}://{config['target_host']}" + (f":{int(port)}" if port else "")
        listen_host = config.get("monitoring_host", "0.0.0.0")
        api_host = config.get("api_host", "127.0.0.1")
        return load_settings(
            config.get("config_file"),
            target=target,
            target_name=config.get("service_name"),
            listen=f"{listen_host}:{int(config.get('monitoring_port', 9090))}",
            api=f"{api_host}:{int(config.get('api_port', 8000))}",
            broker_url=config.get("rabbitmq_url"),
            database_url=config.get("database_url"),
            cache_url=config.get("redis_url"),
            data_dir=config.get("data_dir"),
            notification_channels=config.get("notification_channels"),
            alert_rules=config.get("alert_rules"),
        )

    @property
    def running(self) -> bool:
        return self._runtime is not None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("monitoring is not started")
        return self._runtime

    @property
    def proxy_url(self) -> str:
        address = next(iter(self.runtime.proxy_addresses.values()))
        return f"http://{address}"

    @property
    def api_url(self) -> str:
        url = self.runtime.api_url
        assert url is not None
        return url

    async def start_monitoring(self) -> None:
        """Start the proxy, the pipeline and the API; returns once all listen."""
        if self._runtime is not None:
            raise RuntimeError("monitoring is already started")
        runtime = Runtime(self.settings, proxy_process=self._proxy_process)
        await runtime.start()
        self._runtime = runtime
        try:
            for pending in self._alert_configs:
                await self.configure(pending)
        except BaseException:
            await self.stop_monitoring()
            raise

    async def configure(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """Alerting in the brief's short form (``metrics``, ``thresholds``,
        ``alert_channels``; see docs/alerting.md for the mapping to rules).

        Returns the rules made. Before ``start_monitoring`` the config is validated
        at once and applied when monitoring starts. Raises ``RuleError`` (a
        ``ValueError``) naming the bad field.
        """
        runtime = self._runtime
        if runtime is None or runtime.alerts is None:
            rules = rules_from_configure(config, now=time.time())
            self._alert_configs.append(config)
        else:
            rules = await alert_service.apply_configure(system=runtime.alerts, data=config)
        return [rule.document() for rule in rules]

    async def stop_monitoring(self) -> None:
        """Stop accepting requests, flush captured events to the store, and stop."""
        if self._runtime is None:
            return
        runtime, self._runtime = self._runtime, None
        await runtime.stop()

    async def __aenter__(self) -> ModelAPIMonitor:
        await self.start_monitoring()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop_monitoring()
