"""How imgpipe authenticates to Kafka: one place that turns the IMGPIPE_KAFKA_* settings
into client options, for Faust (``broker_credentials``) and for every aiokafka client.

Managed Kafka recipes are in docs/deploy.md (Confluent Cloud, AWS MSK, Azure Event Hubs).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context

from pipeline.errors import ConfigError
from pipeline.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class FileTokenProvider(AbstractTokenProvider):
    """An OAUTHBEARER token read from a file on every login, so a sidecar or a projected
    service-account token can rotate it (e.g. AWS MSK IAM, Confluent OAuth)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def token(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the Kafka OAuth token from {self.path}: "
                              f"{exc.strerror}") from None


def _check(settings: Settings) -> tuple[str, str]:
    protocol = settings.kafka_security_protocol.upper()
    mechanism = settings.kafka_sasl_mechanism.upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"IMGPIPE_KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of "
                          f"{', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL"):
        if mechanism not in MECHANISMS:
            raise ConfigError(f"IMGPIPE_KAFKA_SASL_MECHANISM={mechanism!r}: use one of "
                              f"{', '.join(MECHANISMS)}")
        if mechanism == "OAUTHBEARER" and not settings.kafka_oauth_token_file:
            raise ConfigError("OAUTHBEARER needs IMGPIPE_KAFKA_OAUTH_TOKEN_FILE")
        if mechanism != "OAUTHBEARER" and not (settings.kafka_username
                                               and settings.kafka_password):
            raise ConfigError(f"SASL {mechanism} needs IMGPIPE_KAFKA_USERNAME and "
                              "IMGPIPE_KAFKA_PASSWORD")
    if settings.kafka_ca_file and not Path(settings.kafka_ca_file).is_file():
        raise ConfigError(f"IMGPIPE_KAFKA_CA_FILE={settings.kafka_ca_file}: no such file")
    return protocol, mechanism


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return create_ssl_context(cafile=settings.kafka_ca_file or None)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    protocol, mechanism = _check(settings)
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = FileTokenProvider(
                settings.kafka_oauth_token_file)
        else:
            options["sasl_plain_username"] = settings.kafka_username
            options["sasl_plain_password"] = settings.kafka_password
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's ``broker_credentials`` for the same settings (None: plaintext)."""
    protocol, mechanism = _check(settings)
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(
            oauth_cb=FileTokenProvider(settings.kafka_oauth_token_file), ssl_context=context)
    return faust.SASLCredentials(username=settings.kafka_username,
                                 password=settings.kafka_password, mechanism=mechanism,
                                 ssl_context=context)


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers plus security options: what every aiokafka client is given."""
    return {"bootstrap_servers": settings.bootstrap_servers, **client_options(settings)}
