"""Offline checks of the deployment files: Kubernetes manifests against the API schemas
(kubernetes-validate), kustomize overlays resolve, autoscaling is capped at the
partition count, settings and commands referenced exist."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import click
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.dev import services as devservices
from pipeline.jobs.rules import load_rules
from pipeline.ops import Limits
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ["keda", "hpa"]


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(folder: Path) -> list[dict]:
    """The resources a kustomization lists (recursively), with its namespace applied: the
    part of `kustomize build` these overlays use (a test compares it with the real one)."""
    kustomization = documents(folder / "kustomization.yaml")[0]
    assert set(kustomization) <= {"apiVersion", "kind", "namespace", "resources", "labels",
                                  "images"}, "a kustomize feature this check does not model"
    rendered = []
    for entry in kustomization["resources"]:
        target = (folder / entry).resolve()
        assert target.exists(), f"{folder}: resource {entry} does not exist"
        rendered += render(target) if target.is_dir() else documents(target)
    if "namespace" in kustomization:
        for doc in rendered:
            doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return rendered


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def base_settings() -> Settings:
    [config] = by_kind(render(K8S / "base"), "ConfigMap")
    return Settings.from_env(config["data"])


@pytest.fixture(scope="module")
def kustomize() -> Path:
    try:
        return devservices.kustomize_binary(echo=lambda m: None)
    except Exception as exc:
        pytest.fail(f"could not build kustomize: {exc}", pytrace=False)


def kustomize_build(kustomize: Path, folder: Path) -> list[dict]:
    result = subprocess.run([str(kustomize), "build", str(folder)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_renders_what_the_checks_below_model(kustomize, overlay):
    built = kustomize_build(kustomize, K8S / "overlays" / overlay)
    modelled = render(K8S / "overlays" / overlay)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in modelled)
    images = {c["image"] for d in built if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"ghcr.io/example/imgpipe:0.1.0"}
    base_kinds = {d["kind"] for d in render(K8S / "base")}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "imgpipe"
               for d in built if d["kind"] in base_kinds)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_manifest_matches_the_kubernetes_schema(kustomize, overlay):
    docs = kustomize_build(kustomize, K8S / "overlays" / overlay)
    core = [d for d in docs if not d["apiVersion"].startswith("keda.sh/")]
    assert {"Deployment", "Service", "Ingress", "ConfigMap",
            "PodDisruptionBudget"} <= {d["kind"] for d in core}
    assert "Secret" not in {d["kind"] for d in docs}  # never a default secret
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert all(d["metadata"]["namespace"] == "imgpipe" for d in docs)


def test_configmap_holds_only_real_settings():
    [config] = by_kind(render(K8S / "base"), "ConfigMap")
    known = {f"IMGPIPE_{name.upper()}" for name in Settings.__dataclass_fields__}
    assert set(config["data"]) <= known
    settings = Settings.from_env(config["data"])  # and they parse
    assert settings.web_bind == "0.0.0.0" and settings.replication_factor == 3


def test_autoscaling_is_capped_at_the_partition_count_and_watches_our_topics():
    settings = base_settings()
    [scaled] = by_kind(render(K8S / "overlays" / "keda"), "ScaledObject")
    [hpa] = by_kind(render(K8S / "overlays" / "hpa"), "HorizontalPodAutoscaler")
    assert scaled["spec"]["maxReplicaCount"] == settings.partitions == hpa["spec"]["maxReplicas"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "imgpipe-worker"
    kafka = [t["metadata"] for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]
    assert {t["topic"] for t in kafka} == {settings.priority_topic(p)
                                          for p in ("high", "normal", "low")}
    assert {t["consumerGroup"] for t in kafka} == {settings.app_id}
    assert {t["bootstrapServers"] for t in kafka} == {settings.bootstrap_servers}
    assert all(t["allowIdleConsumers"] == "false" for t in kafka)
    assert {t["type"] for t in scaled["spec"]["triggers"]} == {"kafka", "cpu", "memory"}
    metrics = {m["resource"]["name"] for m in hpa["spec"]["metrics"]}
    assert metrics == {"cpu", "memory"}


def test_worker_pods_probe_real_endpoints_and_drain_in_time():
    settings = base_settings()
    [worker] = [d for d in by_kind(render(K8S / "base"), "Deployment")
                if d["metadata"]["name"] == "imgpipe-worker"]
    pod = worker["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["ports"][0]["containerPort"] == settings.web_port
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert container["resources"]["requests"]["cpu"] == str(settings.image_threads)
    web_host = [e for e in container["env"] if e["name"] == "IMGPIPE_WEB_HOST"]
    assert web_host[0]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["initContainers"][0]["args"] == ["topics", "create"]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*?/healthz", text, re.M | re.S)
    assert re.search(r'^ENTRYPOINT \["imgpipe"\]', text, re.M)


def test_procfile_commands_exist():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    kinds = dict(line.split(":", 1) for line in lines)
    assert {"worker", "archiver"} <= set(kinds)
    for kind, command in kinds.items():
        program, *args = command.split()
        assert program == "imgpipe", kind
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, f"{kind}: `{command}` is not a command: {result.output}"


def test_the_schema_check_rejects_a_broken_manifest():
    [worker] = [d for d in by_kind(render(K8S / "base"), "Deployment")
                if d["metadata"]["name"] == "imgpipe-worker"]
    worker["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_compose_stack_is_consistent():
    deploy = ROOT / "deploy"
    compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "gcs", "spanner", "setup", "worker", "archiver", "prometheus",
            "grafana"} <= set(services)
    known = {f"IMGPIPE_{name.upper()}" for name in Settings.__dataclass_fields__}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        assert not image or (":" in image and not image.endswith(":latest")), image
        depends = service.get("depends_on", {})
        assert set(depends) <= set(services), name
        env = service.get("environment", {})
        assert {k for k in env if k.startswith("IMGPIPE_")} <= known, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (deploy / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} undeclared"
    Settings.from_env(services["worker"]["environment"])  # the settings parse
    prometheus = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    alerts = (deploy / "prometheus" / "alerts.yml").read_text()
    assert set(jobs) == {"imgpipe", "kafka"}
    for job_name in jobs:
        assert f'up{{job="{job_name}"}}' in alerts
    job = jobs["imgpipe"]
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == Settings().web_port
    agent = services["kafka"]["environment"]["KAFKA_OPTS"]
    port = agent.split("=", 1)[1].split(":")[0]
    assert jobs["kafka"]["static_configs"][0]["targets"] == [f"kafka:{port}"]
    assert agent.endswith(":/opt/jmx-config/jmx-exporter.yml") and any(
        v.startswith("./kafka/jmx-exporter.yml:/opt/jmx-config/") for v in
        services["kafka"]["volumes"])
    provider = yaml.safe_load(
        (deploy / "grafana" / "provisioning" / "dashboards" / "imgpipe.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(f"{path}/imgpipe-dashboard.json:ro")
               for v in services["grafana"]["volumes"])


def test_nightly_replay_workflow_is_a_valid_dag_of_real_commands():
    [flow] = documents(K8S / "workflows" / "nightly-replay.yaml")
    assert flow["kind"] == "CronWorkflow" and flow["spec"]["concurrencyPolicy"] == "Forbid"
    spec = flow["spec"]["workflowSpec"]
    templates = {t["name"]: t for t in spec["templates"]}
    tasks = templates[spec["entrypoint"]]["dag"]["tasks"]
    names = [t["name"] for t in tasks]
    for position, task in enumerate(tasks):  # dependencies exist and come first
        assert set(task.get("dependencies", [])) <= set(names[:position]), task["name"]
        assert task["template"] in templates
    assert templates["imgpipe"]["retryStrategy"]["limit"]
    parameters = {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}
    for task in tasks:
        [arg] = task["arguments"]["parameters"]
        line = arg["value"].replace("{{workflow.parameters.since}}", "2026-11-26T00:00:00Z")
        line = line.replace("{{workflow.parameters.reasons}}", parameters["reasons"])
        args = shlex.split(line)
        command = cli
        while isinstance(command, click.Group):  # down to the subcommand
            command, args = command.commands[args[0]], args[1:]
        command.make_context(command.name, args)  # parses, or raises UsageError


def test_the_pubsub_bridge_manifest_is_valid_and_runs_a_real_command(tmp_path):
    docs = documents(K8S / "extras" / "pubsub-bridge.yaml")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    [rules] = by_kind(docs, "ConfigMap")
    path = tmp_path / "rules.toml"
    path.write_text(rules["data"]["rules.toml"])
    loaded = load_rules(str(path), Limits(), 16)
    assert loaded.routes and loaded.routes[0].preset == "web"
    [bridge] = by_kind(docs, "Deployment")
    [container] = bridge["spec"]["template"]["spec"]["containers"]
    args = [a.replace("$(SUBSCRIPTION)", "projects/p/subscriptions/s") for a in container["args"]]
    assert CliRunner().invoke(cli, [*args, "--help"]).exit_code == 0
    # the bridge signs with its own token, never the workers' (admin) secrets
    [token] = [e for e in container["env"] if e["name"] == "IMGPIPE_API_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"]["name"] == "imgpipe-bridge"
    assert not [ref for ref in container.get("envFrom", []) if "secretRef" in ref]


def test_the_ingress_publishes_the_api_and_dashboard_but_not_metrics_or_admin_pages():
    [ingress] = by_kind(documents(K8S / "base" / "ingress.yaml"), "Ingress")
    paths = [(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"]
             for p in rule["http"]["paths"]]

    def published(url: str) -> bool:
        return any(url == path if kind == "Exact" else
                   url == path or url.startswith(path.rstrip("/") + "/")
                   for path, kind in paths)

    assert all(published(u) for u in ("/", "/api/jobs", "/api/jobs/x", "/static/app.js"))
    assert not any(published(u) for u in ("/metrics", "/table/jobs/", "/router/", "/healthz"))
