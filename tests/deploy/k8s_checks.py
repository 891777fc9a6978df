"""Checks of the Kubernetes manifests in deploy/kubernetes that a schema cannot make.

Every check takes the parsed documents (plain data, so a test can mutate a copy) and
returns the problems it found as one-line strings; no problem is an empty list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

Doc = dict[str, Any]
"""One Kubernetes object as parsed from YAML."""

KUSTOMIZATION = "kustomization.yaml"
"""The kustomization file of the directory (not a Kubernetes object)."""

CLUSTER_DOMAIN = "svc.cluster.local"
"""The cluster DNS suffix of a Service's name."""


def load_directory(directory: Path) -> dict[str, list[Doc]]:
    """Every YAML file of ``directory`` but the kustomization: file name -> its objects."""
    found: dict[str, list[Doc]] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name != KUSTOMIZATION:
            found[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def flatten(files: Mapping[str, list[Doc]]) -> list[Doc]:
    """All objects of all files, in file order."""
    return [doc for docs in files.values() for doc in docs]


def schema_problems(docs: Iterable[Doc], version: str) -> list[str]:
    """Each object checked against the Kubernetes ``version`` schemas, strictly
    (unknown fields are errors)."""
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{object_name(doc)}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{object_name(doc)}: {exc}")
    return problems


def kustomization_problems(directory: Path) -> list[str]:
    """The kustomization lists exactly the other YAML files of the directory."""
    data = yaml.safe_load((directory / KUSTOMIZATION).read_text())
    listed = list(data.get("resources") or [])
    present = sorted(p.name for p in directory.glob("*.yaml") if p.name != KUSTOMIZATION)
    problems = [
        f"{KUSTOMIZATION}: lists {n}, which does not exist" for n in listed if n not in present
    ]
    problems += [f"{KUSTOMIZATION}: does not list {n}" for n in present if n not in listed]
    problems += [f"{KUSTOMIZATION}: lists {n} twice" for n in set(listed) if listed.count(n) > 1]
    return problems


# -- helpers --------------------------------------------------------------------------------


def object_name(doc: Mapping[str, Any]) -> str:
    """``Kind/name`` of an object, as problems name it."""
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    """The objects of one ``kind``."""
    return [d for d in docs if d.get("kind") == kind]


def find(docs: Iterable[Doc], kind: str, name: str) -> Doc | None:
    """The object of ``kind`` called ``name``, if any."""
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (``matchLabels``/``matchExpressions`` or a Service's
    plain mapping) selects ``labels``. An empty or missing selector selects nothing here:
    every selector in these manifests is meant to pick specific pods."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _containers(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"].get("containers") or [])


def _pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"].get("labels") or {})


def selected(docs: Iterable[Doc], selector: Mapping[str, Any] | None, namespace: str) -> list[Doc]:
    """The Deployments in ``namespace`` whose pods ``selector`` selects."""
    return [
        d
        for d in of_kind(docs, "Deployment")
        if d["metadata"].get("namespace") == namespace and _selects(selector, _pod_labels(d))
    ]


def _port_in(port: int | str, containers: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``port`` (a number or a port name) is a container port of ``containers``."""
    for container in containers:
        for declared in container.get("ports") or []:
            if port in (declared.get("containerPort"), declared.get("name")):
                return True
    return False


def container_port(port: int | str, containers: Iterable[Mapping[str, Any]]) -> int | None:
    """The number of container port ``port`` (a number or a name), if declared."""
    for container in containers:
        for declared in container.get("ports") or []:
            if port in (declared.get("containerPort"), declared.get("name")):
                return int(declared["containerPort"])
    return None


# -- cross-references ------------------------------------------------------------------------


def selector_problems(docs: list[Doc]) -> list[str]:
    """Deployments select their own pods; Services, PodDisruptionBudgets and
    NetworkPolicies select the pods of a Deployment; HPAs scale a Deployment."""
    problems = []
    for deployment in of_kind(docs, "Deployment"):
        if not _selects(deployment["spec"].get("selector"), _pod_labels(deployment)):
            problems.append(
                f"{object_name(deployment)}: its selector does not select its pod labels"
            )
    for doc in docs:
        kind, namespace = doc.get("kind"), doc["metadata"].get("namespace")
        if kind in ("Service", "PodDisruptionBudget"):
            selector = doc["spec"].get("selector")
        elif kind == "NetworkPolicy":
            selector = doc["spec"].get("podSelector")
            for rule in doc["spec"].get("ingress") or []:
                for peer in rule.get("from") or []:
                    if "podSelector" in peer and not selected(docs, peer["podSelector"], namespace):
                        problems.append(
                            f"{object_name(doc)}: an ingress peer selects no Deployment's pods"
                        )
        elif kind == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]
            if target.get("kind") != "Deployment" or not find(docs, "Deployment", target["name"]):
                problems.append(
                    f"{object_name(doc)}: scales {target.get('kind')}/{target['name']}, "
                    "not a Deployment here"
                )
            continue
        else:
            continue
        if not selected(docs, selector, namespace):
            problems.append(f"{object_name(doc)}: its selector matches no Deployment's pods")
    return problems


def port_problems(docs: list[Doc]) -> list[str]:
    """Service target ports and NetworkPolicy ports are container ports of the pods
    they select."""
    problems = []
    for service in of_kind(docs, "Service"):
        namespace = service["metadata"].get("namespace")
        for deployment in selected(docs, service["spec"].get("selector"), namespace):
            for port in service["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                if not _port_in(target, _containers(deployment)):
                    problems.append(
                        f"{object_name(service)}: targetPort {target!r} is no container port of "
                        f"{object_name(deployment)}"
                    )
    for policy in of_kind(docs, "NetworkPolicy"):
        namespace = policy["metadata"].get("namespace")
        for deployment in selected(docs, policy["spec"].get("podSelector"), namespace):
            for rule in policy["spec"].get("ingress") or []:
                for port in rule.get("ports") or []:
                    if not _port_in(port["port"], _containers(deployment)):
                        problems.append(
                            f"{object_name(policy)}: port {port['port']!r} is no container port of "
                            f"{object_name(deployment)}"
                        )
    return problems


def _probes(container: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        if kind in container:
            yield kind, container[kind]


def probe_problems(docs: list[Doc], http_route_exists: Callable[[str], bool]) -> list[str]:
    """Every probe's port is a container port; every HTTP probe's path is a route of the
    app (``http_route_exists(path)``)."""
    problems = []
    for deployment in of_kind(docs, "Deployment"):
        for container in _containers(deployment):
            where = f"{object_name(deployment)} container {container['name']}"
            for kind, probe in _probes(container):
                action = probe.get("httpGet") or probe.get("grpc") or probe.get("tcpSocket")
                if action is None:
                    continue
                if not _port_in(action["port"], [container]):
                    problems.append(f"{where}: {kind} port {action['port']!r} is no container port")
                path = (probe.get("httpGet") or {}).get("path")
                if path is not None and not http_route_exists(path):
                    problems.append(f"{where}: {kind} path {path} is no route of the app")
    return problems


def security_problems(docs: list[Doc], uid: int | None) -> list[str]:
    """Pods run as a non-root ``uid`` (when given: the image's user) with the
    restricted security settings."""
    problems = []
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        pod_context = pod.get("securityContext") or {}
        for container in _containers(deployment):
            where = f"{object_name(deployment)} container {container['name']}"
            context = {**pod_context, **(container.get("securityContext") or {})}
            if context.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if uid is not None and context.get("runAsUser") != uid:
                problems.append(
                    f"{where}: runAsUser {context.get('runAsUser')} is not the image's {uid}"
                )
            if uid is not None and context.get("runAsGroup") != uid:
                problems.append(f"{where}: runAsGroup {context.get('runAsGroup')} is not {uid}")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: the root filesystem is writable")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation is allowed")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: capabilities are not all dropped")
            if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: no RuntimeDefault seccomp profile")
            mounts = {m["mountPath"] for m in container.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                problems.append(f"{where}: /tmp is not a writable volume")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in (resources.get(part) or {}):
                        problems.append(f"{where}: no {what} {part[:-1]}")
    return problems


def reference_problems(docs: list[Doc]) -> list[str]:
    """Volume mounts name volumes; ConfigMap volumes and Secret references name objects
    and keys that exist; all objects are in one namespace."""
    problems = []
    namespaces = {d["metadata"].get("namespace") for d in docs if d.get("kind") != "Namespace"}
    declared = {d["metadata"]["name"] for d in of_kind(docs, "Namespace")}
    if len(namespaces) != 1 or not namespaces <= declared:
        problems.append(
            f"objects are in namespaces {sorted(map(str, namespaces))}, declared {sorted(declared)}"
        )
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for container in _containers(deployment):
            where = f"{object_name(deployment)} container {container['name']}"
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in volumes:
                    problems.append(f"{where}: mounts {mount['name']}, which is no volume")
            for variable in container.get("env") or []:
                ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if ref is None:
                    continue
                secret = find(docs, "Secret", ref["name"])
                keys = set((secret or {}).get("data") or {}) | set(
                    (secret or {}).get("stringData") or {}
                )
                if ref["key"] not in keys:
                    problems.append(
                        f"{where}: {variable['name']} reads Secret {ref['name']} key "
                        f"{ref['key']}, which does not exist"
                    )
        for volume in volumes.values():
            if "configMap" not in volume:
                continue
            configmap = find(docs, "ConfigMap", volume["configMap"]["name"])
            if configmap is None:
                problems.append(
                    f"{object_name(deployment)}: volume {volume['name']} names no ConfigMap here"
                )
                continue
            for item in volume["configMap"].get("items") or []:
                if item["key"] not in (configmap.get("data") or {}):
                    problems.append(
                        f"{object_name(deployment)}: volume {volume['name']} reads key "
                        f"{item['key']}, which {object_name(configmap)} lacks"
                    )
    return problems


def mounted_files(deployment: Mapping[str, Any], container_name: str) -> dict[str, tuple[str, str]]:
    """Where ConfigMap keys appear in a container: file path -> (ConfigMap, key)."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    container = next(c for c in _containers(deployment) if c["name"] == container_name)
    files = {}
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"], {}).get("configMap")
        if source is None:
            continue
        for item in source.get("items") or []:
            files[f"{mount['mountPath'].rstrip('/')}/{item['path']}"] = (
                source["name"],
                item["key"],
            )
    return files


def remote_address_problems(docs: list[Doc], address: str) -> list[str]:
    """``address`` (a remote plugin's ``spec.address``, ``dns:///name:port``) is a
    headless Service of these manifests, by its cluster DNS name and port, and that
    port reaches a container that listens on it with ``--address``."""
    from weaviate_ext.grpc.remote import parse_target

    target = parse_target(address)
    if target.kind != "dns" or target.host is None:
        return [f"{address}: not a dns: address"]
    name, _, rest = target.host.partition(".")
    namespace, _, suffix = rest.partition(".")
    if suffix != CLUSTER_DOMAIN:
        return [f"{address}: {target.host} is not <service>.<namespace>.{CLUSTER_DOMAIN}"]
    service = find(docs, "Service", name)
    if service is None or service["metadata"].get("namespace") != namespace:
        return [f"{address}: no Service {name} in namespace {namespace}"]
    problems = []
    if service["spec"].get("clusterIP") != "None":
        problems.append(f"{address}: Service {name} is not headless (clusterIP: None)")
    ports = [p for p in service["spec"].get("ports") or [] if p["port"] == target.port]
    if not ports:
        return [*problems, f"{address}: Service {name} has no port {target.port}"]
    for deployment in selected(docs, service["spec"].get("selector"), namespace):
        number = container_port(ports[0].get("targetPort", target.port), _containers(deployment))
        for container in _containers(deployment):
            argv = [*container.get("command", []), *container.get("args", [])]
            listens = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--address"]
            if listens and listens != [f"0.0.0.0:{number}"]:
                problems.append(
                    f"{address}: {object_name(deployment)} listens on {listens[0]}, the Service "
                    f"sends to container port {number}"
                )
    return problems


def image_uid(containerfile: Path) -> int | None:
    """The numeric user a Containerfile's image runs as (its last ``USER``; a user name
    is looked up in the file's ``useradd``/``adduser`` lines), or None if it cannot tell."""
    text = re.sub(r"\\\n", " ", containerfile.read_text())
    users = re.findall(r"^\s*USER\s+(\S+)", text, flags=re.MULTILINE | re.IGNORECASE)
    if not users:
        return None
    user = users[-1].split(":")[0]
    if user.isdigit():
        return int(user)
    for line in text.splitlines():
        if re.search(r"\b(useradd|adduser)\b", line) and re.search(
            rf"\s{re.escape(user)}(\s|$|;|&)", line
        ):
            found = re.search(r"(?:--uid|-u)[\s=]+(\d+)", line)
            if found:
                return int(found.group(1))
    return None
