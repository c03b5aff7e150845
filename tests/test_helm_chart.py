"""The Helm chart (deploy/helm/clusterxchange): `helm lint` and `helm template` pass with an operator's
values, every rendered manifest validates against the Kubernetes schemas (strict: no unknown field),
and what it renders is what the README promises: a Deployment with probes and resources, a Service
and a PodDisruptionBudget per service, settings in ConfigMaps and credentials in Secrets, network
policies that let each service reach only the broker, its database (and, for notifications, mail
and webhooks), an optional autoscaler; without a secret it refuses to render.

Helm is the real one, built from the Go module proxy by tools/helm/build.sh (make install does it
once); the schemas come offline from the kubernetes-validate package."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from applications.settings import Settings as ApplicationsSettings
from assessment.settings import Settings as AssessmentSettings
from grants.settings import Settings as GrantsSettings
from notifications.settings import Settings as NotificationsSettings

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "clusterxchange"
SERVICES = {"applications": ApplicationsSettings, "assessment": AssessmentSettings, "grants": GrantsSettings,
            "notifications": NotificationsSettings}
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest and newest this chart is checked against
# The first build of Helm takes minutes (make install usually did it already).
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def helm() -> str:
    built = subprocess.run([str(ROOT / "tools" / "helm" / "build.sh")], capture_output=True, text=True,
                           timeout=1700, check=True)
    return built.stdout.strip().splitlines()[-1]


def operator_values() -> dict:
    """What an operator sets: the chart has no usable default for any of it."""
    return {"config": {"jwtIssuer": "https://idp.example.eu/realms/clusterxchange"},
            "secrets": {"jwtSecret": secrets.token_urlsafe(32)},
            "kafka": {"bootstrapServers": "kafka-0.kafka.example.eu:9093,kafka-1.kafka.example.eu:9093",
                      "setup": {"adminPassword": secrets.token_urlsafe(24)}},
            "notifications": {"publicBaseUrl": "https://cx.example.eu/notifications",
                              "smtp": {"host": "smtp.example.eu", "username": "cx",
                                       "password": secrets.token_urlsafe(16)}},
            "services": {name: {"kafkaPassword": secrets.token_urlsafe(24), "mongodbUrl": database_url(name)}
                         for name in SERVICES}}


def database_url(user: str) -> str:
    return f"mongodb://{user}:{secrets.token_urlsafe(18)}@mongodb.data:27017/?authSource=admin&tls=true"


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run(helm: str, command: str, values: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    args = [helm, "lint", "--strict", str(CHART)] if command == "lint" else [helm, "template", "cx", str(CHART)]
    return subprocess.run([*args, "-f", str(path)], capture_output=True, text=True, timeout=120)


def render(helm: str, values: dict, tmp_path: Path) -> list[dict]:
    result = run(helm, "template", values, tmp_path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["labels"]["app.kubernetes.io/name"]: d for d in docs if d["kind"] == kind}


def test_helm_lint_passes(helm, tmp_path):
    result = run(helm, "lint", operator_values(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("extra", [
    {},
    {"defaults": {"autoscaling": {"enabled": True}}, "kafka": {"caConfigMap": "kafka-ca"}},
    {"networkPolicy": {"enabled": False}, "kafka": {"setup": {"enabled": False}},
     "services": {"grants": {"existingSecret": "grants-credentials"}}},
    {"tracing": {"otlpEndpoint": "http://otel-collector.observability:4318"}},
], ids=["defaults", "autoscaling-and-tls-ca", "no-policies-no-setup-existing-secret", "traces-exported"])
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(helm, tmp_path, extra):
    docs = render(helm, merged(operator_values(), extra), tmp_path)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ConfigMap"):
        assert set(of_kind(docs, kind)) == set(SERVICES), kind
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field


def test_the_schema_check_refuses_a_field_kubernetes_does_not_know():
    """The validation above can fail: a misspelt probe field is caught."""
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
             "spec": {"containers": [{"name": "c", "image": "i", "livenessProbe": {"httpGet": {"pth": "/"}}}]}}
    with pytest.raises(kubernetes_validate.ValidationError, match="pth"):
        kubernetes_validate.validate(probe, KUBERNETES_VERSIONS[-1], strict=True)


def test_each_service_runs_with_probes_resources_and_a_disruption_budget(helm, tmp_path):
    docs = render(helm, operator_values(), tmp_path)
    deployments, services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == set(services) == set(budgets) == set(SERVICES)
    for name, deployment in deployments.items():
        port = dockerfile_port(name)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"clusterxchange/{name}:0.1.0"
        assert container["ports"][0]["containerPort"] == port == services[name]["spec"]["ports"][0]["port"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert set(container["resources"]) == {"requests", "limits"}
        assert deployment["spec"]["replicas"] >= 2 and budgets[name]["spec"]["minAvailable"] == 1
        assert pod["securityContext"]["runAsNonRoot"] and not pod["automountServiceAccountToken"]
        assert container["securityContext"]["readOnlyRootFilesystem"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"],
                annotations["prometheus.io/path"]) == ("true", str(port), "/metrics")
    assert of_kind(docs, "HorizontalPodAutoscaler") == {}


def dockerfile_port(service: str) -> int:
    return int(re.search(r"^EXPOSE (\d+)$", (ROOT / "services" / service / "Dockerfile").read_text(), re.M)[1])


def test_settings_are_in_configmaps_that_the_services_read_and_credentials_only_in_secrets(helm, tmp_path):
    values = operator_values()
    docs = render(helm, values, tmp_path)
    configs, credentials = of_kind(docs, "ConfigMap"), of_kind(docs, "Secret")
    for name, settings in SERVICES.items():
        data = configs[name]["data"]
        # OTEL_* are read by the OpenTelemetry SDK itself (cx_shared.tracing)
        unknown = [key for key in data if key.lower() not in settings.model_fields and not key.startswith("OTEL_")]
        assert unknown == [], f"{name}'s ConfigMap sets what it does not read: {unknown}"
        assert data["DEV_TOKENS"] == "false" and data["KAFKA_USERNAME"] == name
        assert data["TOPIC_RETENTION_MS"] == "-1" and data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        own = credentials[name]["stringData"]
        assert own["KAFKA_PASSWORD"] == values["services"][name]["kafkaPassword"]  # its own, no other's
        assert not any(v["kafkaPassword"] in own.values() for n, v in values["services"].items() if n != name)
        refs = [ref for env in deployed(docs, name)["envFrom"] for ref in env.values()]
        assert refs == [{"name": f"cx-{name}"}, {"name": f"cx-{name}"}]
    everything_but_secrets = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    for secret in secret_values(values):
        assert secret not in everything_but_secrets
    assert credentials["kafka-setup"]["stringData"] == {"KAFKA_PASSWORD": values["kafka"]["setup"]["adminPassword"]}


def deployed(docs: list[dict], name: str) -> dict:
    return of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]


def secret_values(values: dict) -> list[str]:
    return [values["secrets"]["jwtSecret"], values["kafka"]["setup"]["adminPassword"],
            values["notifications"]["smtp"]["password"], *(v["kafkaPassword"] for v in values["services"].values()),
            *(v["mongodbUrl"] for v in values["services"].values())]


def test_each_service_reaches_only_the_broker_its_database_and_for_notifications_mail_and_webhooks(helm, tmp_path):
    values = merged(operator_values(), {"services": {"grants": {"mongodbEgress": {
        "to": [{"ipBlock": {"cidr": "10.20.30.40/32"}}], "ports": [27018]}}}})
    policies = of_kind(render(helm, values, tmp_path), "NetworkPolicy")
    assert set(policies) == {*SERVICES, "kafka-setup"}
    for name in SERVICES:
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [dockerfile_port(name)]
        ports = [sorted({p["port"] for p in rule["ports"]}) for rule in spec["egress"]]
        database = [27018] if name == "grants" else [27017]
        mail_and_webhooks = [[587], [443]] if name == "notifications" else []
        assert ports == [[53], [9093], database, *mail_and_webhooks]
        assert all(rule.get("to") for rule in spec["egress"] if rule["ports"][0]["port"] != 587)
    webhooks = policies["notifications"]["spec"]["egress"][-1]["to"][0]["ipBlock"]
    assert webhooks["cidr"] == "0.0.0.0/0" and {"10.0.0.0/8", "169.254.0.0/16"} <= set(webhooks["except"])
    assert policies["grants"]["spec"]["egress"][2]["to"] == [{"ipBlock": {"cidr": "10.20.30.40/32"}}]
    setup = policies["kafka-setup"]["spec"]
    assert [sorted({p["port"] for p in r["ports"]}) for r in setup["egress"]] == [[53], [9093]]
    assert "ingress" not in setup  # nothing may connect to the job


def test_traces_go_to_the_otlp_endpoint_set_and_only_then_through_the_network_policies(helm, tmp_path):
    """No endpoint: no OTEL_ setting and no egress beyond the broker, database (mail, webhooks). An
    endpoint: every service's ConfigMap names it and its policy lets it reach the collector, nowhere else."""
    plain = render(helm, operator_values(), tmp_path)
    assert not [k for c in of_kind(plain, "ConfigMap").values() for k in c["data"] if k.startswith("OTEL_")]
    collector = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
                 "ports": [4317, 4318]}
    endpoint = "http://otel-collector.observability:4318"
    docs = render(helm, merged(operator_values(), {"tracing": {"otlpEndpoint": endpoint, "egress": collector}}),
                  tmp_path)
    configs, policies = of_kind(docs, "ConfigMap"), of_kind(docs, "NetworkPolicy")
    for name in SERVICES:
        assert configs[name]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
        plain_egress = of_kind(plain, "NetworkPolicy")[name]["spec"]["egress"]
        egress = policies[name]["spec"]["egress"]
        added = [rule for rule in egress if rule not in plain_egress]
        assert added == [{"ports": [{"protocol": "TCP", "port": 4317}, {"protocol": "TCP", "port": 4318}],
                          "to": collector["to"]}], name
    assert policies["kafka-setup"]["spec"]["egress"] == of_kind(plain, "NetworkPolicy")["kafka-setup"]["spec"]["egress"]


def test_the_autoscaler_is_optional(helm, tmp_path):
    docs = render(helm, merged(operator_values(), {"services": {"grants": {"autoscaling": {"enabled": True}}}}),
                  tmp_path)
    scalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(scalers) == {"grants"}
    assert scalers["grants"]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                           "name": "cx-grants"}
    assert "replicas" not in of_kind(docs, "Deployment")["grants"]["spec"]  # the autoscaler sets it
    assert "replicas" in of_kind(docs, "Deployment")["assessment"]["spec"]


def test_the_admins_job_creates_the_topics_with_their_retention_before_the_services_start(helm, tmp_path):
    docs = render(helm, merged(operator_values(), {"config": {"topicRetentionMs": 2_592_000_000}}), tmp_path)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "/app/deploy/broker_setup.py", "apply"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KAFKA_USERNAME"] == "admin" and env["TOPIC_RETENTION_MS"] == "2592000000"
    assert "COPY deploy/broker_setup.py ./deploy/broker_setup.py" in (
        ROOT / "services" / "applications" / "Dockerfile").read_text()
    assert of_kind(docs, "ConfigMap")["grants"]["data"]["TOPIC_RETENTION_MS"] == "2592000000"


@pytest.mark.parametrize("change, named", [
    ({"secrets": {"jwtSecret": ""}}, "secrets.jwtSecret must be a secret of at least 32 bytes"),
    ({"secrets": {"jwtSecret": "short-but-private"}}, "secrets.jwtSecret must be a secret of at least 32 bytes"),
    ({"services": {"grants": {"kafkaPassword": ""}}}, "services.grants.kafkaPassword is required"),
    ({"kafka": {"securityProtocol": "PLAINTEXT"}}, "/kafka/securityProtocol': value must be one of 'SASL_SSL'"),
    ({"kafka": {"bootstrapServers": ""}}, "kafka.bootstrapServers is required"),
    ({"kafka": {"setup": {"adminPassword": ""}}}, "kafka.setup.adminPassword is required"),
    ({"services": {"applications": {"mongodbUrl": ""}}}, "services.applications.mongodbUrl is required"),
    ({"services": {"grants": {"mongodbUrl": "mongodb://mongodb.data:27017/"}}},
     "services.grants.mongodbUrl must name the service's own database user"),
    ({"mongodb": {"url": "mongodb://cx:pw@mongodb.data:27017/"}}, "mongodb.url is no longer read"),
    ({"config": {"topicRetentionMs": 0}}, "config.topicRetentionMs must be -1"),
    ({"notifications": {"publicBaseUrl": "http://cx.example.eu"}}, "notifications.publicBaseUrl must be an https://"),
    ({"services": {"grants": {"replicas": "two"}}}, "/services/grants/replicas': got string, want integer"),
    ({"kafka": {"saslMechanism": "GSSAPI"}}, "/kafka/saslMechanism"),
    ({"servics": {"grants": {"replicas": 3}}}, "additional properties 'servics' not allowed"),  # a typo is not ignored
    ({"tracing": {"otlpEndpoint": "otel-collector:4318"}}, "/tracing/otlpEndpoint"),  # a URL, with its scheme
])
def test_it_refuses_to_render_without_what_makes_it_safe_naming_the_value_and_the_rule(helm, tmp_path, change, named):
    result = run(helm, "template", merged(operator_values(), change), tmp_path)
    assert result.returncode != 0
    assert named in result.stderr


def test_a_changed_setting_or_secret_rolls_only_the_pods_of_the_service_that_reads_it(helm, tmp_path):
    values = operator_values()
    changed = merged(values, {"notifications": {"smtp": {"host": "relay.example.eu"}},
                              "services": {"grants": {"kafkaPassword": secrets.token_urlsafe(24)}}})

    def checksums(v: dict) -> dict[str, dict]:
        return {name: d["spec"]["template"]["metadata"]["annotations"]
                for name, d in of_kind(render(helm, v, tmp_path), "Deployment").items()}
    before, after = checksums(values), checksums(changed)
    assert [n for n in SERVICES if before[n]["checksum/config"] != after[n]["checksum/config"]] == ["notifications"]
    assert [n for n in SERVICES if before[n]["checksum/secret"] != after[n]["checksum/secret"]] == ["grants"]


def test_each_service_connects_as_its_own_database_user_and_holds_no_other_credentials(helm, tmp_path):
    values = operator_values()
    credentials = of_kind(render(helm, values, tmp_path), "Secret")
    urls = {name: credentials[name]["stringData"]["MONGODB_URL"] for name in SERVICES}
    assert urls == {name: values["services"][name]["mongodbUrl"] for name in SERVICES}
    users = {name: re.match(r"^mongodb://([^:@/]+):", url)[1] for name, url in urls.items()}
    assert users == {name: name for name in SERVICES}
    for name in SERVICES:
        others = [urls[n] for n in SERVICES if n != name]
        assert not any(u in yaml.safe_dump(credentials[name]) for u in others), name
    assert "url" not in yaml.safe_load((CHART / "values.yaml").read_text())["mongodb"]  # no shared default


def test_two_services_sharing_a_database_user_are_refused(helm, tmp_path):
    shared = database_url("cx")
    values = merged(operator_values(), {"services": {"grants": {"mongodbUrl": shared},
                                                     "notifications": {"mongodbUrl": shared.replace("@", "x@")}}})
    result = run(helm, "template", values, tmp_path)
    assert result.returncode != 0
    assert "services.notifications.mongodbUrl uses the database user of another service" in result.stderr


def test_by_default_only_the_namespace_and_the_ingress_controller_reach_the_services(helm, tmp_path):
    policies = of_kind(render(helm, operator_values(), tmp_path), "NetworkPolicy")
    for name in SERVICES:
        (rule,) = policies[name]["spec"]["ingress"]
        assert rule["from"] == [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "ingress-nginx"}}}], name
    closed = of_kind(render(helm, merged(operator_values(), {"networkPolicy": {"ingressFrom": []}}), tmp_path),
                     "NetworkPolicy")
    assert all(closed[name]["spec"]["ingress"] == [] for name in SERVICES)
