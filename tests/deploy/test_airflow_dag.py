"""deploy/airflow/fidelis_monthly.py, loaded by Airflow as a scheduler would load it."""

from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from kubernetes.client import models as k8s

DAG_FILE = Path(__file__).resolve().parents[2] / "deploy" / "airflow" / "fidelis_monthly.py"


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    assert list(bag.dags) == ["fidelis_monthly"]
    return bag.dags["fidelis_monthly"]


@pytest.fixture
def task(dag, monkeypatch):
    task = dag.get_task("run")
    # The calls to the Kubernetes API that cleaning up a pod makes: no cluster here.
    for method in ("patch_already_checked", "process_pod_deletion", "_read_pod_events", "_read_pod_container_states"):
        monkeypatch.setattr(task, method, lambda *args, **kwargs: None)
    monkeypatch.setattr(task, "is_istio_enabled", lambda pod: False)
    return task


def test_the_dag_runs_monthly_one_run_at_a_time(dag):
    assert [task.task_id for task in dag.tasks] == ["run"]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    # A run on the 1st of each month (its data_interval_end) at midnight.
    assert dag.timetable.expression == "0 0 1 * *"


def test_the_pod_runs_fidelis_for_the_month_that_ended(dag, task):
    assert task.arguments[:3] == ["run", "pipelines/loyalty.yaml", "--as-of"]
    as_of = task.arguments[3]
    interval_end = pendulum.datetime(2026, 11, 1, tz=dag.timezone)
    assert task.render_template(as_of, {"data_interval_end": interval_end, "dag": dag}) == "2026-10-31"
    # data_interval_end is exclusive: midnight in the DAG's timezone, seen from UTC.
    rome = pendulum.timezone("Europe/Rome")
    dag_in_rome = type("Dag", (), {"timezone": rome})()
    end_in_rome = pendulum.datetime(2026, 3, 1, tz=rome).in_timezone("UTC")
    assert task.render_template(as_of, {"data_interval_end": end_in_rome, "dag": dag_in_rome}) == "2026-02-28"


def test_the_run_summary_becomes_the_tasks_xcom(task):
    assert task.do_xcom_push is True
    arguments = task.arguments
    assert arguments[arguments.index("--result-json") + 1] == "/airflow/xcom/return.json"


def test_the_pod_is_locked_down_and_spills_to_an_empty_dir(task):
    assert task.container_security_context.read_only_root_filesystem is True
    assert task.security_context.run_as_non_root is True
    assert [(mount.name, mount.mount_path) for mount in task.volume_mounts] == [("spill", "/tmp")]
    assert task.volumes[0].empty_dir is not None
    limit = task.container_resources.limits["memory"]
    assert limit == "3Gi"
    assert task.env_vars["FIDELIS_MEMORY_LIMIT"] == "2560MiB"


def test_fidelis_gets_the_openlineage_parent_of_its_task(task):
    assert task.env_vars["OPENLINEAGE_PARENT_ID"] == (
        "{{ macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance) }}"
    )


def finished_pod(exit_code, phase="Failed"):
    state = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=exit_code))
    status = k8s.V1ContainerStatus(
        name="base", image="fidelis", image_id="", ready=False, restart_count=0, state=state
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="fidelis-run", namespace="analytics"),
        status=k8s.V1PodStatus(phase=phase, container_statuses=[status]),
    )


@pytest.mark.parametrize("code", [2, 3, 70])
def test_config_data_and_internal_errors_fail_without_retries(task, code):
    pod = finished_pod(code)
    with pytest.raises(AirflowFailException, match=f"fidelis exited with {code} "):
        task.cleanup(pod, pod)


@pytest.mark.parametrize("code", [4, 5, 137, 143])
def test_runtime_failures_locks_and_stopped_pods_are_retried(task, code):
    pod = finished_pod(code)
    with pytest.raises(AirflowException) as failure:
        task.cleanup(pod, pod)
    assert not isinstance(failure.value, AirflowFailException)


def test_a_successful_pod_is_a_successful_task(task):
    pod = finished_pod(0, phase="Succeeded")
    assert task.cleanup(pod, pod) is None


def test_skips_pass_through(task, monkeypatch):
    task.skip_on_exit_code = [99]
    pod = finished_pod(99)
    with pytest.raises(AirflowSkipException):
        task.cleanup(pod, pod)
