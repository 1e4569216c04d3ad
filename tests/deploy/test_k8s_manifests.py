"""deploy/k8s/: valid against the Kubernetes schemas (bundled by kubernetes-validate,
no network), and saying what the README promises."""

import importlib.util

import pytest

import manifests
from manifests import DEPLOY, VERSIONS

K8S = DEPLOY / "k8s"
DAG_FILE = DEPLOY / "airflow" / "fidelis_monthly.py"


def resources():
    return manifests.resources(K8S)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version):
    names = manifests.validated(K8S, version)
    assert names == ["cronjob.yaml:CronJob", "secret.yaml:Secret", "serviceaccount.yaml:ServiceAccount"]


def by_kind(kind):
    return next(resource for _, resource in resources() if resource["kind"] == kind)


def test_the_cronjob_never_overlaps_and_runs_in_its_timezone():
    spec = by_kind("CronJob")["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["timeZone"] == "Europe/Rome"
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env["FIDELIS_TIMEZONE"] == spec["timeZone"], "as_of is yesterday in the pipeline's timezone"


def test_config_data_and_internal_errors_fail_the_job_at_once_like_the_dag():
    job = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    fail_job, ignore = job["podFailurePolicy"]["rules"]
    assert fail_job["action"] == "FailJob"
    assert fail_job["onExitCodes"] == {"containerName": "fidelis", "operator": "In", "values": [2, 3, 70]}
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    # The Airflow DAG fails fast on the same codes.
    spec = importlib.util.spec_from_file_location("fidelis_monthly", DAG_FILE)
    dag_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dag_module)
    assert sorted(dag_module.NOT_RETRYABLE) == fail_job["onExitCodes"]["values"]


def test_the_pod_runs_as_a_non_root_user_on_a_read_only_root_with_spill_space():
    pod = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "spill", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "spill", "emptyDir": {"sizeLimit": "20Gi"}}]
    assert container["resources"]["limits"]["memory"] == "3Gi"
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env["FIDELIS_MEMORY_LIMIT"] == "2560MiB", "below the 3 GiB limit"


def test_s3_credentials_come_from_irsa_or_an_optional_secret():
    account = by_kind("ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    pod = by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    secret = by_kind("Secret")
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"], "optional": True}}]
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
