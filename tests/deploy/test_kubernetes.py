"""deploy/kubernetes: every manifest validated against pinned Kubernetes schemas
(kubernetes-validate, offline, strict), the cross-references between them checked
(tests/deploy/k8s_checks.py, also on broken copies), and the remote gRPC plugin they
deploy run on loopback behind an in-process ``serve`` app, configured as the pods are.
"""

from __future__ import annotations

import copy
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import click
import k8s_checks as checks
import pytest
import yaml
from starlette.routing import Match
from starlette.testclient import TestClient

from weaviate_ext import __version__, load_manifest
from weaviate_ext.cli import cli
from weaviate_ext.grpc.settings import Settings as GrpcSettings
from weaviate_ext.manifest.hostconfig import read_host_file
from weaviate_ext.serve import ServeSettings, create_app
from weaviate_ext.serve.settings import CACHE_ENV, PLUGINS_ENV, TOKENS_ENV

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
EXAMPLE = ROOT / "examples" / "plugins" / "grpc-vectorizer"

KUBERNETES_VERSION = "1.33.0"
"""The Kubernetes version whose schemas the manifests must satisfy (kubernetes-validate
ships them offline; 1.33 has every API used here: autoscaling/v2, policy/v1, gRPC
probes and the preStop sleep action)."""

UID = 10001
"""The image's user and group (fixed with deploy/Containerfile)."""

IMAGE = f"weaviate-ext-serve:{__version__}"
"""The image every pod runs, tagged with the framework's version."""

SERVE = "weaviate-ext-serve"
PLUGIN = "grpc-embedder"


@pytest.fixture(scope="module")
def files() -> dict[str, list[checks.Doc]]:
    """The objects of deploy/kubernetes, by file."""
    return checks.load_directory(DEPLOY)


@pytest.fixture(scope="module")
def docs(files: dict[str, list[checks.Doc]]) -> list[checks.Doc]:
    """All objects of deploy/kubernetes."""
    return checks.flatten(files)


@pytest.fixture(scope="module")
def route_exists() -> Callable[[str], bool]:
    """Whether ``GET path`` is a route of the serve app (its real route table)."""
    app = create_app(ServeSettings())

    def exists(path: str) -> bool:
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path}
        scope.update(root_path="", query_string=b"", headers=[])
        return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)

    return exists


def deployment(docs: list[checks.Doc], name: str) -> checks.Doc:
    """The Deployment called ``name`` (it must exist)."""
    found = checks.find(docs, "Deployment", name)
    assert found is not None, f"no Deployment {name}"
    return found


def container(docs: list[checks.Doc], name: str) -> dict[str, Any]:
    """The one container of Deployment ``name``."""
    containers = deployment(docs, name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def configmap_file(docs: list[checks.Doc], path: str, name: str = SERVE) -> str:
    """The text a ConfigMap key mounted at ``path`` in Deployment ``name`` holds."""
    files = checks.mounted_files(deployment(docs, name), container(docs, name)["name"])
    assert path in files, f"nothing is mounted at {path}: {sorted(files)}"
    configmap, key = files[path]
    found = checks.find(docs, "ConfigMap", configmap)
    assert found is not None
    return str(found["data"][key])


def argv(docs: list[checks.Doc], name: str) -> list[str]:
    """The command line of Deployment ``name``'s container."""
    entry = container(docs, name)
    return [*entry.get("command", []), *entry.get("args", [])]


def option(args: list[str], name: str) -> str:
    """The value following option ``name`` in ``args``."""
    assert name in args, f"{name} not in {args}"
    return args[args.index(name) + 1]


# -- the schemas and the kustomization -------------------------------------------------------


def test_every_manifest_validates_against_the_pinned_schemas(
    files: dict[str, list[checks.Doc]], docs: list[checks.Doc]
) -> None:
    assert all(files.values()), "a manifest file holds no object"
    assert checks.schema_problems(docs, KUBERNETES_VERSION) == []
    kinds = sorted(d["kind"] for d in docs)
    for kind in ("Deployment", "Service", "ConfigMap"):
        assert kinds.count(kind) == 2, kinds
    for kind in ("HorizontalPodAutoscaler", "Secret", "NetworkPolicy", "Namespace"):
        assert kind in kinds
    assert {d["apiVersion"] for d in checks.of_kind(docs, "HorizontalPodAutoscaler")} == {
        "autoscaling/v2"
    }
    assert {d["apiVersion"] for d in checks.of_kind(docs, "PodDisruptionBudget")} == {"policy/v1"}


def test_the_validator_refuses_an_unknown_field_and_a_wrong_type(docs: list[checks.Doc]) -> None:
    broken = copy.deepcopy(deployment(docs, SERVE))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert any("readinesProbe" in p for p in checks.schema_problems([broken], KUBERNETES_VERSION))
    service = checks.find(docs, "Service", SERVE)
    assert service is not None
    broken = copy.deepcopy(service)
    broken["spec"]["ports"][0]["port"] = "eighty"
    [problem] = checks.schema_problems([broken], KUBERNETES_VERSION)
    assert problem.startswith("Service/weaviate-ext-serve: spec/ports/0/port: 'eighty'"), problem


def test_kustomization_lists_every_file_and_pins_the_image() -> None:
    assert checks.kustomization_problems(DEPLOY) == []
    data = yaml.safe_load((DEPLOY / checks.KUSTOMIZATION).read_text())
    assert data["images"] == [
        {"name": "weaviate-ext-serve", "newName": "weaviate-ext-serve", "newTag": __version__}
    ]


def test_kustomization_problems_are_found(tmp_path: Path) -> None:
    copied = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, copied)
    (copied / "grpc-embedder-pdb.yaml").unlink()
    (copied / "extra.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    assert checks.kustomization_problems(copied) == [
        "kustomization.yaml: lists grpc-embedder-pdb.yaml, which does not exist",
        "kustomization.yaml: does not list extra.yaml",
    ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_every_object(docs: list[checks.Doc]) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert sorted(map(checks.object_name, rendered)) == sorted(map(checks.object_name, docs))
    images = {
        c["image"]
        for d in checks.of_kind(rendered, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {IMAGE}


# -- cross-references ------------------------------------------------------------------------


def test_selectors_ports_and_references_hold(docs: list[checks.Doc]) -> None:
    assert checks.selector_problems(docs) == []
    assert checks.port_problems(docs) == []
    assert checks.reference_problems(docs) == []


def test_probe_paths_are_routes_of_the_serve_app(
    docs: list[checks.Doc], route_exists: Callable[[str], bool]
) -> None:
    assert checks.probe_problems(docs, route_exists) == []
    serve = container(docs, SERVE)
    assert serve["readinessProbe"]["httpGet"]["path"] == "/.well-known/ready"
    # a pod whose plugins failed to load is restarted, not left unready for good
    assert serve["startupProbe"]["httpGet"]["path"] == "/.well-known/ready"
    assert serve["livenessProbe"]["httpGet"]["path"] == "/.well-known/live"
    plugin = container(docs, PLUGIN)
    assert plugin["readinessProbe"]["grpc"]["port"] == 50051
    assert not route_exists("/.well-known/healthz")


def test_pods_run_restricted_with_cpu_requests_for_the_hpa(docs: list[checks.Doc]) -> None:
    assert checks.security_problems(docs, UID) == []
    hpa = checks.find(docs, "HorizontalPodAutoscaler", SERVE)
    pdb = checks.find(docs, "PodDisruptionBudget", SERVE)
    assert hpa is not None and pdb is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == SERVE
    assert "replicas" not in deployment(docs, SERVE)["spec"], "the HPA owns the replica count"
    # a drain can always take a pod: the PDB keeps fewer pods than the HPA's minimum
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_run_as_user_is_the_images_user(docs: list[checks.Doc]) -> None:
    if not CONTAINERFILE.is_file():
        pytest.skip("deploy/Containerfile does not exist (yet): nothing to compare runAsUser with")
    uid = checks.image_uid(CONTAINERFILE)
    assert uid is not None, "cannot tell the Containerfile's numeric user (USER / useradd -u)"
    assert uid == UID
    assert checks.security_problems(docs, uid) == []


def test_image_user_is_read_from_a_containerfile(tmp_path: Path) -> None:
    path = tmp_path / "Containerfile"
    path.write_text(
        "FROM x AS build\nUSER root\nFROM y\nRUN groupadd -g 10001 app \\\n"
        " && useradd --uid 10001 -g app app\nUSER app\n"
    )
    assert checks.image_uid(path) == 10001
    path.write_text("FROM y\nUSER 4242:4242\n")
    assert checks.image_uid(path) == 4242
    path.write_text("FROM y\n")
    assert checks.image_uid(path) is None


def test_every_pod_runs_the_versioned_image(docs: list[checks.Doc]) -> None:
    for name in (SERVE, PLUGIN):
        assert container(docs, name)["image"] == IMAGE


# -- serve's configuration --------------------------------------------------------------------


def test_serve_command_uses_real_options(docs: list[checks.Doc]) -> None:
    args = argv(docs, SERVE)
    assert args[0] == "weaviate-ext"
    split = args.index("serve")
    serve = cli.get_command(click.Context(cli), "serve")
    assert serve is not None
    for command, given in ((cli, args[1:split]), (serve, args[split + 1 :])):
        known = {opt for p in command.params for opt in p.opts + p.secondary_opts}
        used = [a for a in given if a.startswith("-")]
        assert used and set(used) <= known, sorted(set(used) - known)
    assert (option(args, "--host"), option(args, "--port")) == ("0.0.0.0", "8080")
    assert checks.container_port(int(option(args, "--port")), [container(docs, SERVE)]) == 8080


def test_serve_environment_names_are_ones_the_framework_reads(
    docs: list[checks.Doc], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve = cli.get_command(click.Context(cli), "serve")
    assert serve is not None
    known = {TOKENS_ENV, CACHE_ENV, PLUGINS_ENV, "HOME", "PYTHONDONTWRITEBYTECODE"}
    for command in (cli, serve):
        known |= {p.envvar for p in command.params if isinstance(p.envvar, str)}
    known |= {f"WEAVIATE_EXT_GRPC_{f.name.upper()}" for f in attrs.fields(GrpcSettings)}
    # the wasm bridge's compile cache directory (a read-only root needs it elsewhere)
    from weaviate_ext.bridges.cabi.wasm_module import cache_dir

    monkeypatch.setenv("WEAVIATE_EXT_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    known.add("WEAVIATE_EXT_CACHE_DIR")
    env = {e["name"]: e for e in container(docs, SERVE)["env"]}
    assert set(env) <= known, sorted(set(env) - known)
    mounts = {m["mountPath"] for m in container(docs, SERVE)["volumeMounts"]}
    assert env["WEAVIATE_EXT_CACHE_DIR"]["value"] in mounts
    assert env[TOKENS_ENV]["valueFrom"]["secretKeyRef"]["name"] == "weaviate-ext-serve-tokens"


def test_remote_plugin_manifest_validates_and_names_the_headless_service(
    docs: list[checks.Doc], tmp_path: Path
) -> None:
    args = argv(docs, SERVE)
    plugins = option(args, "--plugins")
    path = tmp_path / "plugin.yaml"
    path.write_text(configmap_file(docs, f"{plugins}/{PLUGIN}/plugin.yaml"))
    manifest = load_manifest(path)
    assert manifest.metadata.name == PLUGIN == option(args, "--vectorizer")
    assert manifest.spec.runtime == "grpc"
    assert manifest.spec.command is None
    assert manifest.spec.address == f"dns:///{PLUGIN}.weaviate-ext.svc.cluster.local:50051"
    assert checks.remote_address_problems(docs, manifest.spec.address) == []
    host = tmp_path / "host.yaml"
    host.write_text(configmap_file(docs, option(args, "--config-file")))
    config, grants = read_host_file(host)
    assert set(config) <= {PLUGIN} and grants is None


def test_plugin_pods_run_the_example_plugin_code(docs: list[checks.Doc]) -> None:
    args = argv(docs, PLUGIN)
    script = args[1]
    assert args[0].startswith("python") and script.endswith("/plugin_server.py")
    assert configmap_file(docs, script, PLUGIN) == (EXAMPLE / "plugin_server.py").read_text()
    model = f"{script.rpartition('/')[0]}/src/hashing_model.py"
    assert configmap_file(docs, model, PLUGIN) == (EXAMPLE / "src/hashing_model.py").read_text()


def test_only_serve_pods_reach_the_plugin_port(docs: list[checks.Doc]) -> None:
    policy = checks.find(docs, "NetworkPolicy", PLUGIN)
    assert policy is not None
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    [peer] = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespace or IP peers"
    assert checks.selected(docs, peer["podSelector"], "weaviate-ext") == [deployment(docs, SERVE)]
    assert checks.selected(docs, policy["spec"]["podSelector"], "weaviate-ext") == [
        deployment(docs, PLUGIN)
    ]
    [port] = rule["ports"]
    assert checks.container_port(port["port"], [container(docs, PLUGIN)]) == 50051


# -- broken copies are caught -----------------------------------------------------------------


def _mutate(
    docs: list[checks.Doc], kind: str, name: str, change: Callable[[Any], None]
) -> list[checks.Doc]:
    broken = copy.deepcopy(docs)
    target = checks.find(broken, kind, name)
    assert target is not None
    change(target)
    return broken


def _first_container(d: Any) -> Any:
    return d["spec"]["template"]["spec"]["containers"][0]


MUTATIONS: list[tuple[str, str, str, Callable[[Any], None], str]] = [
    (
        "service selector",
        "Service",
        SERVE,
        lambda d: d["spec"]["selector"].update({"app.kubernetes.io/name": "serve"}),
        "Service/weaviate-ext-serve: its selector matches no Deployment's pods",
    ),
    (
        "pdb selector",
        "PodDisruptionBudget",
        PLUGIN,
        lambda d: d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/component": "x"}),
        "PodDisruptionBudget/grpc-embedder: its selector matches no Deployment's pods",
    ),
    (
        "deployment selector",
        "Deployment",
        PLUGIN,
        lambda d: d["spec"]["template"]["metadata"]["labels"].pop("app.kubernetes.io/component"),
        "Deployment/grpc-embedder: its selector does not select its pod labels",
    ),
    (
        "network policy peer",
        "NetworkPolicy",
        PLUGIN,
        lambda d: d["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "weaviate"}
        ),
        "NetworkPolicy/grpc-embedder: an ingress peer selects no Deployment's pods",
    ),
    (
        "hpa target",
        "HorizontalPodAutoscaler",
        SERVE,
        lambda d: d["spec"]["scaleTargetRef"].update({"name": "serve"}),
        "HorizontalPodAutoscaler/weaviate-ext-serve: scales Deployment/serve, not a Deployment",
    ),
    (
        "service target port name",
        "Service",
        SERVE,
        lambda d: d["spec"]["ports"][0].update({"targetPort": "web"}),
        "Service/weaviate-ext-serve: targetPort 'web' is no container port of Deployment/",
    ),
    (
        "service target port number",
        "Service",
        PLUGIN,
        lambda d: d["spec"]["ports"][0].update({"targetPort": 50052}),
        "Service/grpc-embedder: targetPort 50052 is no container port of Deployment/grpc-embedder",
    ),
    (
        "container port renamed",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["ports"][0].update({"name": "web"}),
        "targetPort 'http' is no container port of Deployment/weaviate-ext-serve",
    ),
    (
        "network policy port",
        "NetworkPolicy",
        PLUGIN,
        lambda d: d["spec"]["ingress"][0]["ports"][0].update({"port": 8080}),
        "NetworkPolicy/grpc-embedder: port 8080 is no container port of Deployment/grpc-embedder",
    ),
    (
        "readiness path",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["readinessProbe"]["httpGet"].update({"path": "/healthz"}),
        "readinessProbe path /healthz is no route of the app",
    ),
    (
        "liveness port",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["livenessProbe"]["httpGet"].update({"port": 8000}),
        "livenessProbe port 8000 is no container port",
    ),
    (
        "grpc probe port",
        "Deployment",
        PLUGIN,
        lambda d: _first_container(d)["readinessProbe"]["grpc"].update({"port": 50052}),
        "readinessProbe port 50052 is no container port",
    ),
    (
        "run as root",
        "Deployment",
        SERVE,
        lambda d: d["spec"]["template"]["spec"]["securityContext"].update({"runAsUser": 0}),
        "runAsUser 0 is not the image's 10001",
    ),
    (
        "writable root",
        "Deployment",
        PLUGIN,
        lambda d: _first_container(d)["securityContext"].update({"readOnlyRootFilesystem": False}),
        "container plugin: the root filesystem is writable",
    ),
    (
        "capabilities kept",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["securityContext"].pop("capabilities"),
        "container serve: capabilities are not all dropped",
    ),
    (
        "no cpu request",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["resources"]["requests"].pop("cpu"),
        "container serve: no cpu request",
    ),
    (
        "secret key",
        "Secret",
        "weaviate-ext-serve-tokens",
        lambda d: d.update({"stringData": {"token": "x"}}),
        "AUTHENTICATION_ALLOWED_TOKENS reads Secret weaviate-ext-serve-tokens key tokens, which",
    ),
    (
        "configmap key",
        "ConfigMap",
        "grpc-embedder-code",
        lambda d: d["data"].pop("hashing_model.py"),
        "volume code reads key hashing_model.py, which ConfigMap/grpc-embedder-code lacks",
    ),
    (
        "mount of no volume",
        "Deployment",
        SERVE,
        lambda d: _first_container(d)["volumeMounts"][0].update({"name": "plugin"}),
        "container serve: mounts plugin, which is no volume",
    ),
    (
        "other namespace",
        "Service",
        PLUGIN,
        lambda d: d["metadata"].update({"namespace": "default"}),
        "objects are in namespaces ['default', 'weaviate-ext'], declared ['weaviate-ext']",
    ),
]


@pytest.mark.parametrize(
    ("kind", "name", "change", "expected"),
    [pytest.param(*m[1:], id=m[0]) for m in MUTATIONS],
)
def test_a_broken_copy_is_caught(
    docs: list[checks.Doc],
    route_exists: Callable[[str], bool],
    kind: str,
    name: str,
    change: Callable[[Any], None],
    expected: str,
) -> None:
    broken = _mutate(docs, kind, name, change)
    problems = [
        *checks.selector_problems(broken),
        *checks.port_problems(broken),
        *checks.probe_problems(broken, route_exists),
        *checks.security_problems(broken, UID),
        *checks.reference_problems(broken),
    ]
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d: d["spec"]["ports"][0].update({"port": 50052}),
            "Service grpc-embedder has no port 50051",
            id="service port",
        ),
        pytest.param(
            lambda d: d["spec"].pop("clusterIP"),
            "Service grpc-embedder is not headless (clusterIP: None)",
            id="not headless",
        ),
        pytest.param(
            lambda d: d["metadata"].update({"name": "embedder"}),
            "no Service grpc-embedder in namespace weaviate-ext",
            id="service name",
        ),
    ],
)
def test_a_remote_address_that_misses_the_service_is_caught(
    docs: list[checks.Doc], change: Callable[[Any], None], expected: str
) -> None:
    address = f"dns:///{PLUGIN}.weaviate-ext.svc.cluster.local:50051"
    broken = _mutate(docs, "Service", PLUGIN, change)
    assert any(expected in p for p in checks.remote_address_problems(broken, address))


def test_a_remote_address_of_another_form_or_port_is_caught(docs: list[checks.Doc]) -> None:
    assert checks.remote_address_problems(docs, "dns:///grpc-embedder:50051") == [
        "dns:///grpc-embedder:50051: grpc-embedder is not <service>.<namespace>.svc.cluster.local"
    ]
    broken = _mutate(
        docs,
        "Deployment",
        PLUGIN,
        lambda d: _first_container(d).update(
            command=["python3", "s.py", "--address", "0.0.0.0:9000"]
        ),
    )
    address = f"dns:///{PLUGIN}.weaviate-ext.svc.cluster.local:50051"
    assert checks.remote_address_problems(broken, address) == [
        f"{address}: Deployment/grpc-embedder listens on 0.0.0.0:9000, "
        "the Service sends to container port 50051"
    ]


# -- the deployed plugin, served -----------------------------------------------------------------


@pytest.fixture
def plugin_replica(docs: list[checks.Doc], tmp_path: Path) -> Iterator[str]:
    """The plugin pods' code and command, run on 127.0.0.1 (a free port) instead of
    0.0.0.0:50051; yields its ``host:port``, stops it with SIGTERM at the end."""
    args = argv(docs, PLUGIN)
    script = args[1]
    code = tmp_path / "code"
    for path in (script, f"{script.rpartition('/')[0]}/src/hashing_model.py"):
        target = code / path.removeprefix(script.rpartition("/")[0] + "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmap_file(docs, path, PLUGIN))
    command = [sys.executable, str(code / "plugin_server.py"), *args[2:]]
    command[command.index("--address") + 1] = "127.0.0.1:0"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
    }
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stream = process.stderr

    def drain() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "the plugin server exited"
                continue
            found = re.search(r"serving \w+ on (127\.0\.0\.1:\d+)", line)
            address = found.group(1) if found else None
        assert address is not None, "the plugin server did not say where it listens"
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_the_configmaps_plugin_serves_through_serve_as_configured(
    docs: list[checks.Doc], plugin_replica: str, tmp_path: Path
) -> None:
    args = argv(docs, SERVE)
    plugins = tmp_path / "plugins"
    (plugins / PLUGIN).mkdir(parents=True)
    mounted = option(args, "--plugins")
    text = configmap_file(docs, f"{mounted}/{PLUGIN}/plugin.yaml")
    address = f"dns:///{PLUGIN}.weaviate-ext.svc.cluster.local:50051"
    assert address in text
    (plugins / PLUGIN / "plugin.yaml").write_text(text.replace(address, f"dns:///{plugin_replica}"))
    host = tmp_path / "host.yaml"
    host.write_text(configmap_file(docs, option(args, "--config-file")))
    config, _ = read_host_file(host)
    secret = checks.find(docs, "Secret", "weaviate-ext-serve-tokens")
    assert secret is not None
    token = secret["stringData"]["tokens"]
    settings = ServeSettings(
        plugin_dirs=(str(plugins),),
        config=config,
        vectorizer=option(args, "--vectorizer"),
        tokens=(token,),
        cache=True,
        timeout=10.0,
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        ready = client.get("/.well-known/ready")
        while ready.status_code != 204 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = client.get("/.well-known/ready")
        assert ready.status_code == 204, ready.text
        assert client.post("/vectors", json={"text": "hello"}).status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        meta = client.get("/meta", headers=headers).json()
        assert (meta["name"], meta["runtime"], meta["dimensions"]) == (PLUGIN, "grpc", 768)
        answer = client.post("/vectors", json={"text": "hello world"}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["dim"] == 768 and len(answer.json()["vector"]) == 768
