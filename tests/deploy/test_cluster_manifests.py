"""deploy/cluster/: the Kubernetes manifests valid against the Kubernetes schemas
(kubernetes-validate, no network), and the processes of both deployments (Kubernetes and
docker-compose) pointing at each other as the README says."""

import pytest
import yaml

import manifests
from manifests import DEPLOY, VERSIONS

CLUSTER = DEPLOY / "cluster"


def resources():
    return manifests.resources(CLUSTER / "k8s")


def by_kind(kind, component):
    return next(
        resource
        for _, resource in resources()
        if resource["kind"] == kind and resource["metadata"]["labels"]["app.kubernetes.io/component"] == component
    )


def container(workload):
    pod = workload["spec"]["template"]["spec"]
    [only] = pod["containers"]
    return pod, only


def option(args, name):
    return args[args.index(name) + 1]


def env(container):
    return {variable["name"]: variable.get("value") for variable in container.get("env", [])}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version):
    names = manifests.validated(CLUSTER / "k8s", version)
    assert names == ["executors.yaml:Deployment", "run-job.yaml:Job", "scheduler.yaml:Deployment", "scheduler.yaml:Service"]


def test_executors_and_runs_reach_the_scheduler_through_its_service():
    service = by_kind("Service", "scheduler")
    [port] = service["spec"]["ports"]
    _, scheduler = container(by_kind("Deployment", "scheduler"))
    assert option(scheduler["args"], "--bind") == f"0.0.0.0:{port['port']}"
    address = f"{service['metadata']['name']}:{port['port']}"
    _, executor = container(by_kind("Deployment", "executor"))
    assert option(executor["args"], "--scheduler") == address
    _, run = container(by_kind("Job", "run"))
    assert run["args"][:2] == ["run", "pipelines/loyalty.yaml"]
    assert option(run["args"], "--cluster") == f"df://{address}"


def test_executors_shuffle_to_an_empty_dir_and_spill_below_their_memory_limit():
    pod, executor = container(by_kind("Deployment", "executor"))
    work = option(executor["args"], "--work-dir")
    mounts = {mount["mountPath"]: mount["name"] for mount in executor["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[work]]
    assert executor["resources"]["limits"]["memory"] == "7Gi"
    assert env(executor)["FIDELIS_MEMORY_LIMIT"] == "6GiB", "below the limit"
    # Other executors fetch shuffle files at the pod's IP.
    assert option(executor["args"], "--advertise-host") == "$(POD_IP)"
    assert executor["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert pod["terminationGracePeriodSeconds"] > 60, "longer than an executor's own stop timeout"


def test_every_process_runs_as_a_non_root_user_on_a_read_only_root():
    for _, resource in resources():
        if resource["kind"] == "Service":
            continue
        pod, process = container(resource)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert process["securityContext"]["readOnlyRootFilesystem"] is True
        assert process["image"] == "registry.example.com/fidelis:0.1.0"


def test_the_run_fails_at_once_on_configuration_data_and_internal_errors():
    job = by_kind("Job", "run")["spec"]
    fail_job, ignore = job["podFailurePolicy"]["rules"]
    assert fail_job["onExitCodes"]["values"] == [2, 3, 70]
    assert ignore["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]


def test_the_compose_file_runs_a_scheduler_two_executors_and_a_run_on_one_store():
    services = yaml.safe_load((CLUSTER / "docker-compose.yaml").read_text())["services"]
    scheduler, executor, run = services["scheduler"], services["executor"], services["run"]
    assert scheduler["command"][:2] == ["cluster", "scheduler"]
    port = option(scheduler["command"], "--bind").rsplit(":", 1)[1]
    assert option(executor["command"], "--scheduler") == f"scheduler:{port}"
    assert executor["deploy"]["replicas"] == 2
    assert option(executor["command"], "--work-dir") in executor["tmpfs"]
    assert option(run["command"], "--cluster") == f"df://scheduler:{port}"
    assert option(run["command"], "--set").startswith("output=s3://fidelis/")
    store = {key: value for key, value in scheduler["environment"].items()}
    assert executor["environment"]["AWS_ENDPOINT"] == run["environment"]["AWS_ENDPOINT"] == store["AWS_ENDPOINT"]
