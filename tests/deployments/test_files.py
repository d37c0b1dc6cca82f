"""Compose, Kubernetes, Dockerfile and CI files: parsed and checked against the code they run."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from typer.testing import CliRunner

from socialflow.api.knowledge.router import UPLOAD_PATH
from socialflow.api.posts.router import MEDIA_UPLOAD_PATH
from socialflow.cli import app as cli
from socialflow.core.settings import Settings
from socialflow.stack import PREFECT_SCALE_OUT, PREFECT_SERVER_TUNING, api_server
from tests.deployments._project import (
    DEPLOYMENTS,
    ROOT,
    app_paths,
    unknown_env_names,
    url_path,
)

COMPOSE_DIR = DEPLOYMENTS / "compose"
K8S_DIR = DEPLOYMENTS / "k8s"


def _compose(name: str = "compose.yaml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / name).read_text())
    return data


def _env_keys(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {
        key.strip(): value
        for key, value in (p for p in pairs if len(p) == 2)
        if not key.lstrip().startswith("#")
    }


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _k8s_docs() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S_DIR / "base" / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S_DIR / "base" / resource).read_text()) if d)
    return docs


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, f"`socialflow {' '.join(args)}` is not a command: {result.output}"
    return result.output


def _check_socialflow_command(argv: list[str]) -> None:
    """``argv`` starts the API the way socialflow.stack does, or is a real CLI command."""
    if argv[0] == "uvicorn":
        reference = api_server(Path("/tmp"), host="0.0.0.0").argv
        start = reference.index("uvicorn") + 1
        assert argv[1] == reference[start], "uvicorn must load the app socialflow.stack loads"
        assert {"--factory", "--no-proxy-headers"} <= set(argv)
        # the app decides whose X-Forwarded-For to believe (SOCIALFLOW_API_TRUSTED_PROXIES)
        assert "--proxy-headers" not in argv and "--forwarded-allow-ips" not in argv
        assert argv[argv.index("--port") + 1] == "8000"
        return
    assert argv[0] == "socialflow", argv
    words = [a for a in argv[1:] if not a.startswith("-")]
    command = words[:2] if words[:1] == ["db"] else words[:1]
    output = _cli_ok(*command)
    for option in (a for a in argv if a.startswith("--")):
        assert option in output, f"`socialflow {' '.join(command)}` has no option {option}"


# --- compose ---------------------------------------------------------------------------------


def test_compose_services_have_images_and_builds_that_exist() -> None:
    services = _compose()["services"]
    assert {
        "postgres",
        "redis",
        "prefect-migrate",
        "prefect-server",
        "prefect-services",
        "minio",
        "minio-init",
        "migrate",
        "api",
        "worker",
        "nginx",
    } <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name} has no image"
        if build := service.get("build"):
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).is_file(), name
    for name in ("api", "worker"):
        replicas = str(services[name]["deploy"]["replicas"])
        assert re.fullmatch(r"\d+|\$\{[A-Z_]+:-\d+\}", replicas), f"{name}.deploy.replicas"


def test_compose_env_names_are_real_settings() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert unknown_env_names(_environment(service)) == [], name
        for env_file in service.get("env_file", []):
            path = COMPOSE_DIR / (env_file["path"] if isinstance(env_file, dict) else env_file)
            example = path.with_name(path.name + ".example")
            assert example.is_file(), f"{name} reads {path.name}: commit {example.name}"
            assert unknown_env_names(_env_keys(example)) == [], example.name
    # the example parses as real settings (lists as JSON, production checks pass)
    Settings(_env_file=COMPOSE_DIR / "socialflow.env.example")


def test_compose_variables_are_all_in_env_example_with_placeholder_secrets() -> None:
    text = "".join((COMPOSE_DIR / f).read_text() for f in ("compose.yaml", "compose.traefik.yaml"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    example = _env_keys(COMPOSE_DIR / ".env.example")
    assert used - set(example) == set(), "variables compose reads but .env.example lacks"
    assert set(example) - used == set(), ".env.example variables compose never reads"
    for env in (example, _env_keys(COMPOSE_DIR / "socialflow.env.example")):
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|AUTH_STRING|MASTER_KEYS|VERIFY_TOKEN", key):
                assert "change-me" in value or value == "", f"{key} must be a placeholder"
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert {".env", "socialflow.env", "secrets/"} <= set(ignored)


def test_compose_references_resolve() -> None:
    data = _compose()
    services, volumes, secrets = data["services"], data["volumes"], data["secrets"]
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot"
            if condition["condition"] == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{target} has no check"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
        for secret in service.get("secrets", []):
            assert (secret["source"] if isinstance(secret, dict) else secret) in secrets
    for secret in secrets.values():  # operator-created, never committed
        assert secret["file"].startswith("./secrets/"), secret


def test_compose_commands_probes_and_prefect_wiring() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["socialflow", "db", "upgrade"]
    for name in ("migrate", "api", "worker"):
        command = services[name]["command"]
        _check_socialflow_command([re.sub(r"\$\{[A-Z_]+:-(\w+)\}", r"\1", a) for a in command])
        env = _environment(services[name])
        assert env["PREFECT_API_URL"] == env["SOCIALFLOW_PREFECT_API_URL"]
        assert env["PREFECT_API_URL"].startswith("http://prefect-server:4200/")
        assert env["PREFECT_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING")
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    server_env = _environment(services["prefect-server"])
    assert server_env["PREFECT_SERVER_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING")
    assert server_env["PREFECT_UI_SERVE_BASE"] == "/prefect"
    import prefect

    for name in ("prefect-server", "prefect-services", "prefect-migrate"):
        assert services[name]["image"].split(":")[1].startswith(prefect.__version__ + "-")
    probe = " ".join(services["api"]["healthcheck"]["test"])
    for url in re.findall(r"http://127\.0\.0\.1:8000/\w+", probe):
        assert url_path(url) in app_paths()
    init = (COMPOSE_DIR / "initdb" / "10-databases.sh").read_text()
    for database, role in (("socialflow", "socialflow"), ("prefect", "prefect")):
        assert f"CREATE DATABASE {database} OWNER {role};" in init
    assert "@postgres:5432/socialflow" in _environment(services["api"])["SOCIALFLOW_DATABASE_URL"]


PREFECT_PROCESSES = ("prefect-migrate", "prefect-server", "prefect-services")
#: what every Prefect process of a scaled-out server must agree on
SHARED_PREFECT = (
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_REDIS_MESSAGING_HOST",
    "PREFECT_REDIS_MESSAGING_PORT",
    "PREFECT_REDIS_MESSAGING_DB",
    "PREFECT_REDIS_MESSAGING_PASSWORD",
    "PREFECT_SERVER_DOCKET_URL",
)


def _redis_db(url: str) -> int:
    match = re.fullmatch(r"rediss?://(?::[^@]+@)?([\w.-]+):(\d+)/(\d+)", url)
    assert match, f"not a redis URL with host, port and database: {url}"
    return int(match.group(3))


def test_compose_scales_prefect_out_with_redis() -> None:
    """Several Prefect API replicas without services, the services in one process apart, Redis
    between them, the same Redis and database everywhere, migrations run once before."""
    services = _compose()["services"]
    server, background = services["prefect-server"], services["prefect-services"]
    assert "--no-services" in server["command"]
    replicas = re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", str(server["deploy"]["replicas"]))
    assert int(replicas) >= 2
    assert background["command"] == ["prefect", "server", "services", "start"]
    assert "deploy" not in background  # one scheduler, one set of recorders
    assert services["prefect-migrate"]["command"][:4] == [
        "prefect",
        "server",
        "database",
        "upgrade",
    ]
    assert services["prefect-migrate"]["restart"] == "no"
    envs = {name: _environment(services[name]) for name in PREFECT_PROCESSES}
    for name in ("prefect-server", "prefect-services"):
        deps = services[name]["depends_on"]
        assert deps["prefect-migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        env = envs[name]
        assert PREFECT_SCALE_OUT.items() <= env.items(), name
        assert PREFECT_SERVER_TUNING.items() <= env.items(), name
        assert env["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"
        assert env["PREFECT_REDIS_MESSAGING_HOST"] == "redis"
        assert env["PREFECT_REDIS_MESSAGING_PORT"] == "6379"
        assert "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED" in env
        # the background services' coordination keeps apart from the event streams
        assert _redis_db(env["PREFECT_SERVER_DOCKET_URL"].replace("${REDIS_PASSWORD}", "x")) != int(
            env["PREFECT_REDIS_MESSAGING_DB"]
        )
        assert "@redis:6379/" in env["PREFECT_SERVER_DOCKET_URL"]
    for key in SHARED_PREFECT:
        values = {name: envs[name].get(key) for name in ("prefect-server", "prefect-services")}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    assert (
        envs["prefect-migrate"]["PREFECT_API_DATABASE_CONNECTION_URL"]
        == envs["prefect-server"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    )
    redis = services["redis"]
    assert "--requirepass" in redis["command"]
    assert "${REDIS_PASSWORD}" in envs["prefect-server"]["PREFECT_SERVER_DOCKET_URL"]
    assert "ports" not in redis  # reachable on the compose network only
    # Socialflow's processes reach the replicas through the one service name
    for name in ("api", "worker", "migrate"):
        assert _environment(services[name])["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_the_api_trusts_forwarded_headers_from_its_proxies_only() -> None:
    base = _compose()["services"]
    trusted = _environment(base["api"])["SOCIALFLOW_API_TRUSTED_PROXIES"]
    proxies = Settings(api={"trusted_proxies": json.loads(trusted)}).api.trusted_proxies
    subnet = _compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    traefik = _compose("compose.traefik.yaml")["services"]["traefik"]
    for service in (base["nginx"], traefik):
        address = service["networks"]["default"]["ipv4_address"]
        assert address in proxies
        assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    # nothing else in the compose project has a fixed address the API would trust
    fixed = [s for s in base.values() if "ipv4_address" in str(s.get("networks", ""))]
    assert len(fixed) == 1
    config = _by_kind(_k8s_docs(), "ConfigMap")["socialflow-config"]
    k8s = json.loads(config["data"]["SOCIALFLOW_API_TRUSTED_PROXIES"])
    assert Settings(api={"trusted_proxies": k8s}).api.trusted_proxies == k8s
    assert "*" not in trusted + config["data"]["SOCIALFLOW_API_TRUSTED_PROXIES"]


def test_nginx_limits_and_routes_match_the_api() -> None:
    conf = (DEPLOYMENTS / "nginx" / "socialflow.conf").read_text()
    defaults = Settings()
    sizes = [int(n) for n in re.findall(r"client_max_body_size (\d+);", conf)]
    assert sizes[0] == defaults.api.max_body_bytes
    assert defaults.knowledge.max_upload_bytes + 64_000 in sizes
    assert defaults.instagram.max_webhook_bytes in sizes
    assert f"location ~ {UPLOAD_PATH} {{" in conf
    assert f"location ~ {MEDIA_UPLOAD_PATH} {{" in conf
    assert defaults.publishing.max_video_bytes + 64_000 in sizes
    locations = re.findall(r"location (?:= |\^~ )?(/[\w/.-]*)", conf)
    for prefix in (
        "/api/auth/login",
        "/webhooks/instagram",
        "/hooks/",
        "/ws/",
        "/metrics",
        "/api/publishing/media/",
    ):
        assert prefix in locations
        assert any(p.startswith(prefix) for p in app_paths()), f"the API serves no {prefix}"
    assert "proxy_pass http://socialflow_api;" in conf
    assert not re.search(r"proxy_pass http://socialflow_api/", conf), "no URI rewriting"


# --- Dockerfile and Makefile ------------------------------------------------------------------


def _dockerfile() -> str:
    """The Dockerfile without its comment lines."""
    lines = (DEPLOYMENTS / "Dockerfile").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#")) + "\n"


def test_dockerfile_install_steps_match_the_makefile() -> None:
    makefile, docker = (ROOT / "Makefile").read_text(), _dockerfile()
    uv_version = re.search(r"^UV_VERSION \?= (\S+)$", makefile, re.M)
    assert uv_version and f"ARG UV_VERSION={uv_version.group(1)}" in docker
    assert '"uv==${UV_VERSION}"' in docker
    make_sync = re.search(r"\$\(UV\) sync (.+)$", makefile, re.M)
    assert make_sync
    docker_syncs = re.findall(r"uv sync ([^\n\\]+)", docker)
    assert docker_syncs and all(
        set(make_sync.group(1).split()) | {"--no-dev"} <= set(s.split()) for s in docker_syncs
    )
    for step in ("npm ci", "npm run build"):
        assert re.search(rf"cd frontend && {step}", makefile)
        assert re.search(rf"^RUN {step}", docker, re.M)
    assert re.search(r"^FROM node:20\S* AS frontend$", docker, re.M)
    assert "WORKDIR /app/frontend" in docker
    assert re.search(
        r"^COPY --from=frontend \S+ /app/frontend/dist /app/frontend/dist$", docker, re.M
    )
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", docker, re.M):
        for item in source.split():
            assert (ROOT / item).exists(), f"COPY of missing {item}"


def test_dockerfile_runs_as_non_root_with_a_real_healthcheck() -> None:
    docker = _dockerfile()
    user = re.findall(r"^USER (\S+)$", docker, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    check = re.search(r"^HEALTHCHECK .*\n(?:.*\n)*?.*CMD (.+)$", docker, re.M)
    assert check and url_path(re.findall(r"http://[^'\"]+", check.group(1))[0]) in app_paths()
    cmd = re.search(r"^CMD (\[.+\])$", docker, re.M)
    assert cmd
    _check_socialflow_command(json.loads(cmd.group(1)))
    ignore = (DEPLOYMENTS / "Dockerfile.dockerignore").read_text().split()
    assert {"**/node_modules", "frontend/dist", "**/.venv", "**/.env"} <= set(ignore)


# --- Kubernetes --------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    base = K8S_DIR / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml", "externalsecret.yaml"}
    assert listed == on_disk


def test_k8s_references_resolve() -> None:
    docs = _k8s_docs()
    deployments = _by_kind(docs, "Deployment")
    assert set(deployments) == {"socialflow-api", "socialflow-worker"}
    configmaps, secrets = _by_kind(docs, "ConfigMap"), _by_kind(docs, "Secret")
    claims = _by_kind(docs, "PersistentVolumeClaim")
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels[name].items(), name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    for service in _by_kind(docs, "Service").values():
        selector = service["spec"]["selector"]
        matches = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
        assert matches == ["socialflow-api"], service["metadata"]["name"]
        container = deployments[matches[0]]["spec"]["template"]["spec"]["containers"][0]
        named = {p["name"] for p in container["ports"]}
        assert all(p["targetPort"] in named for p in service["spec"]["ports"])
    for pdb in _by_kind(docs, "PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pod_labels.values())
    for hpa in _by_kind(docs, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    pods = [d["spec"]["template"]["spec"] for d in deployments.values()]
    pods += [j["spec"]["template"]["spec"] for j in _by_kind(docs, "Job").values()]
    for pod in pods:
        for volume in pod.get("volumes", []):
            assert volume["persistentVolumeClaim"]["claimName"] in claims
        for container in pod["containers"]:
            assert container["image"] == "socialflow"
            _check_socialflow_command(container["args"])
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source["secretRef"]
                assert ref["name"] in (configmaps if "configMapRef" in source else secrets)
    for data in [*configmaps.values(), *secrets.values()]:
        keys = data.get("data") or data.get("stringData")
        assert unknown_env_names(keys) == [], data["metadata"]["name"]
    external = yaml.safe_load((K8S_DIR / "base" / "externalsecret.yaml").read_text())
    assert external["spec"]["target"]["name"] in secrets


def test_k8s_probes_use_real_routes_and_declared_ports() -> None:
    api = _by_kind(_k8s_docs(), "Deployment")["socialflow-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"] for p in container["ports"]} | {
        p["containerPort"] for p in container["ports"]
    }
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("readiness", "liveness", "startup")
    }
    assert probes["readiness"]["path"] == "/readyz" and probes["liveness"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in app_paths() and probe["port"] in ports


def test_k8s_scrape_annotations_name_ports_the_processes_listen_on() -> None:
    """Prometheus scrapes every API and worker pod at a port its process really serves, and the
    network policy lets the monitoring namespace reach exactly those ports."""
    docs = _k8s_docs()
    policies = {
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: p
        for p in _by_kind(docs, "NetworkPolicy").values()
        if "app.kubernetes.io/component" in p["spec"]["podSelector"].get("matchLabels", {})
    }
    for name in ("socialflow-api", "socialflow-worker"):
        template = _by_kind(docs, "Deployment")[name]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        container = template["spec"]["containers"][0]
        args = container["args"]
        served = args[args.index("--metrics-port" if "--metrics-port" in args else "--port") + 1]
        assert annotations["prometheus.io/port"] == served, name
        port = next(p for p in container["ports"] if str(p["containerPort"]) == served)
        if "--metrics-port" in args:  # the worker's metrics server must listen beyond loopback
            assert args[args.index("--metrics-host") + 1] == "0.0.0.0"
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        allowed = [
            rule
            for rule in policies[component]["spec"]["ingress"]
            if any(
                s.get("namespaceSelector", {})
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                == "monitoring"
                for s in rule["from"]
            )
        ]
        assert any(port["name"] in [p["port"] for p in r["ports"]] for r in allowed), name


def test_k8s_prefect_and_autoscaling_wiring() -> None:
    docs = _k8s_docs()
    config = _by_kind(docs, "ConfigMap")["socialflow-config"]["data"]
    assert config["PREFECT_API_URL"] == config["SOCIALFLOW_PREFECT_API_URL"]
    assert "PREFECT_API_AUTH_STRING" in _by_kind(docs, "Secret")["socialflow-secrets"]["stringData"]
    hpas = _by_kind(docs, "HorizontalPodAutoscaler")
    assert hpas["socialflow-api"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    external = hpas["socialflow-worker"]["spec"]["metrics"][0]
    assert external["type"] == "External"
    metric = external["external"]["metric"]["name"]
    assert metric == "socialflow_queue_depth"
    assert f'"{metric}"' in (ROOT / "socialflow" / "api" / "metrics.py").read_text()
    import prefect

    values = yaml.safe_load((K8S_DIR / "prefect" / "prefect-values.yaml").read_text())
    assert values["global"]["prefect"]["image"]["prefectTag"].startswith(prefect.__version__ + "-")
    env = {e["name"] for e in values["server"]["env"]}
    assert {"PREFECT_SERVER_API_AUTH_STRING", "PREFECT_UI_SERVE_BASE"} <= env
    assert unknown_env_names(env) == []
    assert values["ingress"]["enabled"] is False  # the UI is operator-only


def test_k8s_values_scale_prefect_out_with_redis() -> None:
    values = yaml.safe_load((K8S_DIR / "prefect" / "prefect-values.yaml").read_text())
    assert values["server"]["replicaCount"] >= 2
    assert values["backgroundServices"]["runAsSeparateDeployment"] is True
    assert values["redis"]["enabled"] is True
    # global env reaches the API replicas and the background services alike
    entries = values["global"]["prefect"]["env"]
    assert unknown_env_names(e["name"] for e in entries) == []
    assert len({e["name"] for e in entries}) == len(entries)
    plain = {e["name"]: e["value"] for e in entries if "value" in e}
    secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in entries if "valueFrom" in e}
    assert PREFECT_SCALE_OUT.items() <= plain.items()
    assert PREFECT_SERVER_TUNING.items() <= plain.items()
    assert plain["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"
    assert {"PREFECT_SERVER_DOCKET_URL", "PREFECT_REDIS_MESSAGING_PASSWORD"} <= set(secret)
    redis_secret = values["redis"]["auth"]["existingSecret"]
    assert secret["PREFECT_REDIS_MESSAGING_PASSWORD"] == {
        "name": redis_secret,
        "key": values["redis"]["auth"]["existingSecretPasswordKey"],
    }
    assert secret["PREFECT_SERVER_DOCKET_URL"]["name"] == redis_secret
    # the chart's own messaging values for the services name the same Redis
    messaging = values["backgroundServices"]["messaging"]
    assert messaging["broker"] == PREFECT_SCALE_OUT["PREFECT_MESSAGING_BROKER"]
    assert messaging["cache"] == PREFECT_SCALE_OUT["PREFECT_MESSAGING_CACHE"]
    assert messaging["redis"]["host"] == plain["PREFECT_REDIS_MESSAGING_HOST"]
    assert str(messaging["redis"]["port"]) == plain["PREFECT_REDIS_MESSAGING_PORT"]
    assert str(messaging["redis"]["db"]) == plain["PREFECT_REDIS_MESSAGING_DB"]
    # the docket URL the operator stores is documented with another database than messaging
    header = (K8S_DIR / "prefect" / "prefect-values.yaml").read_text()
    documented = re.search(r"redis://:<password>@([\w.-]+):(\d+)/(\d+)", header)
    assert documented and documented.group(1) == plain["PREFECT_REDIS_MESSAGING_HOST"]
    assert int(documented.group(3)) != int(plain["PREFECT_REDIS_MESSAGING_DB"])


def test_the_embedded_prefect_server_starts_tuned_unless_told_otherwise() -> None:
    """`socialflow up` and the test suite start Prefect through prefect_server: tuned by default,
    Prefect's own settings with an empty tuning, events off only when asked."""
    from socialflow.stack import prefect_server, prefect_server_tuning

    tuned = prefect_server(Path("/tmp/prefect-home")).env
    assert PREFECT_SERVER_TUNING.items() <= tuned.items()
    assert "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED" not in tuned
    plain = prefect_server(Path("/tmp/prefect-home"), tuning={}).env
    assert not set(PREFECT_SERVER_TUNING) & set(plain)
    quiet = prefect_server(Path("/tmp/prefect-home"), tuning=prefect_server_tuning(events=False))
    assert quiet.env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED"] == "false"


def test_prefect_tuning_names_real_settings_with_the_values_prefect_reads() -> None:
    """Each tuning pair is a real Prefect setting, and Prefect reads the value meant."""
    import os

    from prefect.settings.models.root import Settings as PrefectSettings

    assert unknown_env_names([*PREFECT_SERVER_TUNING, *PREFECT_SCALE_OUT]) == []
    saved = {k: os.environ.get(k) for k in [*PREFECT_SERVER_TUNING, *PREFECT_SCALE_OUT]}
    try:
        os.environ.update(PREFECT_SERVER_TUNING)
        os.environ.update(PREFECT_SCALE_OUT)
        server = PrefectSettings().server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert server.services.triggers.enabled is False
    assert server.events.stream_out_enabled is False
    assert server.services.task_run_recorder.batch_size == 50
    assert server.services.task_run_recorder.flush_interval == 1
    assert server.services.event_persister.enabled is True  # events kept by default
    assert server.events.messaging_broker == "prefect_redis.messaging"
    assert server.events.causal_ordering == "prefect_redis.ordering"
    assert server.concurrency.lease_storage == "prefect_redis.lease_storage"
    import importlib

    for module in set(PREFECT_SCALE_OUT.values()):
        importlib.import_module(module)  # installed with the project (prefect's redis extra)


def test_work_pool_template_placeholders_are_declared() -> None:
    template = json.loads(
        (K8S_DIR / "prefect" / "work-pool" / "base-job-template.json").read_text()
    )
    used = set(re.findall(r"\{\{ (\w+) \}\}", json.dumps(template["job_configuration"])))
    assert used <= set(template["variables"]["properties"])
    manifest = template["job_configuration"]["job_manifest"]
    assert manifest["kind"] == "Job"


# --- CI ---------------------------------------------------------------------------------------


def test_ci_runs_make_test_on_postgres_and_builds_the_image() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    test = workflow["jobs"]["test"]
    postgres = test["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert test["env"]["SOCIALFLOW_TEST_POSTGRES_URL"].startswith("postgresql+psycopg://postgres@")
    chromium_hook = re.search(
        r'os\.environ\.get\("(\w+)"', (ROOT / "tests/e2e/conftest.py").read_text()
    )
    assert chromium_hook and chromium_hook.group(1) in test["env"]
    steps = test["steps"]
    assert any(s.get("run", "").strip() == "make test" for s in steps)
    node = next(s for s in steps if s.get("uses", "").startswith("actions/setup-node"))
    assert str(node["with"]["node-version"]) == "20"
    assert any("uv" in str(s.get("with", {}).get("key", "")) for s in steps)
    assert any("nginx" in s.get("run", "") for s in steps)
    builds = [
        shlex.split(s["run"])
        for s in workflow["jobs"]["image"]["steps"]
        if "docker build" in s.get("run", "")
    ]
    assert builds and builds[0][:4] == ["docker", "build", "-f", "deployments/Dockerfile"]
    assert builds[0][-1] == "."


@pytest.mark.parametrize("name", ["compose.yaml", "compose.traefik.yaml"])
def test_compose_files_parse(name: str) -> None:
    assert _compose(name)["services"]


def test_traefik_alternative_routes_to_real_paths() -> None:
    services = _compose("compose.traefik.yaml")["services"]
    labels = services["api"]["labels"]
    assert labels["traefik.http.services.socialflow.loadbalancer.healthcheck.path"] in app_paths()
    assert labels["traefik.http.services.socialflow.loadbalancer.server.port"] == "8000"
    assert "/api/auth/login" in labels["traefik.http.routers.socialflow-login.rule"]
    assert "basicauth" in " ".join(services["prefect-server"]["labels"])
    base = _compose()["services"]
    assert set(services) - {"traefik"} <= set(base)  # overrides only services that exist
    for secret in services["traefik"].get("secrets", []):
        assert secret["source"] in _compose()["secrets"]
