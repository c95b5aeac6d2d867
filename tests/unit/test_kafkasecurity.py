"""IMGPIPE_KAFKA_* settings map to the right aiokafka options and Faust credentials."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import certifi
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from pipeline.errors import ConfigError
from pipeline.kafka.security import (
    FileTokenProvider,
    client_options,
    faust_credentials,
    kafka_options,
)
from pipeline.settings import Settings


def settings(**env: str) -> Settings:
    return Settings.from_env({f"IMGPIPE_{k.upper()}": v for k, v in env.items()})


def same_as_faust(s: Settings) -> dict:
    """Faust's own translation of our credentials, for comparison."""
    return dict(credentials_to_aiokafka_auth(faust_credentials(s)))


def test_plaintext_by_default():
    s = settings()
    assert client_options(s) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(s) is None
    assert kafka_options(s)["bootstrap_servers"] == "127.0.0.1:9092"


def test_confluent_cloud_style_sasl_ssl_plain():
    s = settings(kafka_security_protocol="SASL_SSL", kafka_username="KEY",
                 kafka_password="SECRET")
    options = client_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("PLAIN", "KEY", "SECRET")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    faust_view = same_as_faust(s)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                "sasl_plain_password"):
        assert faust_view[key] == options[key], key
    assert "SECRET" not in repr(s)  # the password is masked when settings are printed


def test_msk_style_scram_512_with_a_private_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0]
                  + "-----END CERTIFICATE-----\n")  # one CA certificate
    s = settings(kafka_security_protocol="sasl_ssl", kafka_sasl_mechanism="scram-sha-512",
                 kafka_username="alice", kafka_password="pw", kafka_ca_file=str(ca))
    options = client_options(s)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["ssl_context"].cert_store_stats()["x509_ca"] == 1  # only our CA
    assert same_as_faust(s)["sasl_mechanism"] == "SCRAM-SHA-512"


def test_event_hubs_style_connection_string_login():
    s = settings(kafka_security_protocol="SASL_SSL", kafka_username="$ConnectionString",
                 kafka_password="Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=x")
    options = client_options(s)
    assert options["sasl_plain_username"] == "$ConnectionString"
    assert options["sasl_plain_password"].startswith("Endpoint=sb://")


def test_oauthbearer_reads_the_token_file_at_each_login(tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER",
                 kafka_oauth_token_file=str(token))
    provider = client_options(s)["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider)
    assert asyncio.run(provider.token()) == "first"
    token.write_text("rotated")
    assert asyncio.run(provider.token()) == "rotated"
    assert same_as_faust(s)["sasl_mechanism"] == "OAUTHBEARER"


def test_ssl_only():
    s = settings(kafka_security_protocol="SSL")
    assert client_options(s)["security_protocol"] == "SSL"
    assert same_as_faust(s)["security_protocol"] == "SSL"


@pytest.mark.parametrize(("env", "message"), [
    ({"kafka_security_protocol": "TLS"}, "use one of"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI",
      "kafka_username": "u", "kafka_password": "p"}, "use one of"),
    ({"kafka_security_protocol": "SASL_SSL"}, "needs IMGPIPE_KAFKA_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"},
     "IMGPIPE_KAFKA_OAUTH_TOKEN_FILE"),
    ({"kafka_security_protocol": "SSL", "kafka_ca_file": "/nonexistent/ca.pem"},
     "no such file"),
])
def test_bad_settings_are_explained(env, message):
    with pytest.raises(ConfigError, match=message):
        client_options(settings(**env))
