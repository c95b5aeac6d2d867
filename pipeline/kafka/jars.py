"""The broker's jars and the Prometheus JMX exporter agent, from Maven Central.

Resolved once (deploy/kafka/pom.xml) into ``~/.cache/imgpipe/kafka/<version>-r<n>``;
later starts never download. The agent jar is kept apart from the broker's class path
(it is attached with ``-javaagent``, not loaded as a library).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pipeline.errors import ConfigError

KAFKA_VERSION = "4.1.1"
#: Raised when deploy/kafka/pom.xml gains a dependency, so caches resolve again.
RUNTIME_REVISION = 3
REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
AGENT_PREFIX = "jmx_prometheus_javaagent-"


def cache_dir() -> Path:
    base = os.environ.get("IMGPIPE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imgpipe")
    return Path(base) / "kafka" / f"{KAFKA_VERSION}-r{RUNTIME_REVISION}"


def resolve_classpath(echo=print) -> Path:
    """The folder of broker jars, resolved from Maven Central on first use."""
    lib = cache_dir() / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    if not shutil.which("mvn"):
        raise ConfigError("Maven (mvn) is needed once to fetch the Kafka jars: install it "
                          "(e.g. apt-get install maven) and run again")
    if not shutil.which("java"):
        raise ConfigError("Java 17+ is needed to run Kafka: install a JDK (e.g. "
                          "apt-get install openjdk-17-jre-headless)")
    echo(f"Resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central into {lib} "
         "(first run only)...")
    tmp = lib.with_name("lib.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-Dkafka.version={KAFKA_VERSION}", f"-DoutputDirectory={tmp}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError("could not resolve the Kafka jars with Maven:\n"
                          + (result.stdout + result.stderr)[-3000:])
    agent = cache_dir() / "agent"
    shutil.rmtree(agent, ignore_errors=True)
    agent.mkdir(parents=True)
    for jar in tmp.glob(f"{AGENT_PREFIX}*.jar"):
        jar.rename(agent / jar.name)
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.touch()
    return lib


def agent_jar(echo=print) -> Path:
    """The Prometheus JMX exporter agent (resolved with the broker's jars)."""
    resolve_classpath(echo)
    found = sorted((cache_dir() / "agent").glob(f"{AGENT_PREFIX}*.jar"))
    if not found:
        raise ConfigError(f"no JMX exporter agent in {cache_dir() / 'agent'}: remove "
                          f"{cache_dir()} and run again to resolve the jars afresh")
    return found[-1]
