"""Airflow DAG: fidelis's monthly loyalty run on Kubernetes, one pod per month.

Each run computes the month that just ended: ``as_of`` is the last day of the DAG
run's data interval (``data_interval_end`` is exclusive, so the day before it, in
the DAG's timezone). The pod runs the fidelis image with ``--result-json``; its
summary (status, tables with row counts, report URLs, warnings) becomes the
task's XCom.

Retries follow fidelis's exit codes: a configuration error (2), bad input data (3)
or an internal error (70, a bug) fails the task at once, since running it again
gives the same result; a runtime failure (4), a partition locked by another run
(5), a stopped pod (130, 143) or a pod that never ran is retried.

Written for Airflow 3 with the ``apache-airflow-providers-cncf-kubernetes``
provider (tested with Airflow 3.3.2 and the provider 10.25.0). Edit the settings
below for your cluster; deploy/k8s/ has the ServiceAccount and Secret they name.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from kubernetes.client import models as k8s

# --- Settings for your cluster -------------------------------------------------
IMAGE = "registry.example.com/fidelis:0.1.0"
NAMESPACE = "analytics"
SERVICE_ACCOUNT = "fidelis"  # with an IRSA role, or the S3 keys in the Secret below
S3_CREDENTIALS_SECRET = "fidelis-s3"  # optional: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
INPUT = "s3://acme-raw/loyalty"
OUTPUT = "s3://acme-warehouse/loyalty"
TIMEZONE = "UTC"  # the DAG's and the pipeline's timezone
MEMORY_LIMIT = "3Gi"  # the pod's limit; fidelis is told to stay below it
FIDELIS_MEMORY_LIMIT = "2560MiB"
# -------------------------------------------------------------------------------

#: fidelis exit codes that fail the same way on every try.
NOT_RETRYABLE = {
    2: "bad configuration or usage",
    3: "bad input data",
    70: "internal error (a bug in fidelis: please report it)",
}

#: The last complete day of the data interval, in the DAG's timezone.
AS_OF = "{{ data_interval_end.in_timezone(dag.timezone).subtract(days=1) | ds }}"


def exit_code(pod: k8s.V1Pod | None, container: str) -> int | None:
    """The exit code of ``container`` in ``pod``, if it terminated."""
    statuses = (pod.status.container_statuses if pod and pod.status else None) or []
    for status in statuses:
        if status.name == container and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


class FidelisPodOperator(KubernetesPodOperator):
    """Runs fidelis in a pod, and retries only the failures worth retrying."""

    def cleanup(self, pod, remote_pod, *args, **kwargs):
        try:
            super().cleanup(pod, remote_pod, *args, **kwargs)
        except AirflowSkipException:
            raise
        except AirflowException as failure:
            code = exit_code(remote_pod, self.base_container_name)
            if code in NOT_RETRYABLE:
                raise AirflowFailException(
                    f"fidelis exited with {code} ({NOT_RETRYABLE[code]}); not retried: "
                    "a retry would fail the same way"
                ) from failure
            raise


def lineage_environment() -> dict[str, str]:
    """OpenLineage settings for the pod, when Airflow's OpenLineage provider is installed:
    fidelis's events then name this task's run as their parent."""
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        return {}
    return {
        "OPENLINEAGE_PARENT_ID": "{{ macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance) }}",
        "OPENLINEAGE_ROOT_PARENT_ID": "{{ macros.OpenLineageProviderPlugin.lineage_root_parent_id(task_instance) }}",
    }


with DAG(
    dag_id="fidelis_monthly",
    description="Monthly customer-loyalty tables and KPI report (fidelis)",
    schedule="@monthly",
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    # One run per partition at a time; fidelis's lease enforces it too.
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
    },
    tags=["fidelis", "loyalty"],
) as dag:
    FidelisPodOperator(
        task_id="run",
        name="fidelis",
        namespace=NAMESPACE,
        image=IMAGE,
        service_account_name=SERVICE_ACCOUNT,
        arguments=[
            "run",
            "pipelines/loyalty.yaml",
            "--as-of",
            AS_OF,
            "--log-format",
            "json",
            "--result-json",
            "/airflow/xcom/return.json",
        ],
        env_vars={
            "FIDELIS_INPUT": INPUT,
            "FIDELIS_OUTPUT": OUTPUT,
            "FIDELIS_TIMEZONE": TIMEZONE,
            "FIDELIS_MEMORY_LIMIT": FIDELIS_MEMORY_LIMIT,
            "AWS_REGION": "eu-west-1",
            **lineage_environment(),
        },
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=S3_CREDENTIALS_SECRET, optional=True))],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "2", "memory": MEMORY_LIMIT},
            limits={"memory": MEMORY_LIMIT},
        ),
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=10001, fs_group=10001),
        container_security_context=k8s.V1SecurityContext(
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        # The root filesystem is read-only: DataFusion spills to the system temp dir.
        volumes=[k8s.V1Volume(name="spill", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="20Gi"))],
        volume_mounts=[k8s.V1VolumeMount(name="spill", mount_path="/tmp")],
        # fidelis finishes or rolls back a publish on SIGTERM before it exits.
        termination_grace_period=120,
        do_xcom_push=True,
        get_logs=True,
        on_finish_action="delete_pod",
    )
