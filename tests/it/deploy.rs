//! The deployment files: the Airflow DAG (`deploy/airflow/`) and the Kubernetes
//! manifests (`deploy/k8s/`), checked by the Python tests in `tests/deploy/` with
//! Airflow and its Kubernetes provider, and with Kubernetes' own schemas
//! (kubernetes-validate bundles them: no network). `scripts/test` installs these
//! tools from PyPI into a virtualenv in the cache folder.

use std::path::PathBuf;
use std::process::Command;

use crate::support::repo;

/// The virtualenv `scripts/test` installs `tests/deploy/requirements.txt` into.
fn tools() -> PathBuf {
    if let Some(dir) = std::env::var_os("FIDELIS_DEPLOY_TOOLS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
    cache.join("fidelis/deploy-tools")
}

/// Runs the pytest file `tests/deploy/{file}` and checks it ran tests and all passed.
fn pytest(file: &str) {
    let python = tools().join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs tests/deploy/requirements.txt (Airflow, kubernetes-validate) there",
        python.display()
    );
    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(format!("tests/deploy/{file}"))
        .current_dir(repo())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{report}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(" passed") && !summary.contains("skipped"), "{report}");
}

#[test]
fn the_airflow_dag_imports_builds_and_retries_only_what_a_retry_can_fix() {
    pytest("test_airflow_dag.py");
}

#[test]
fn the_kubernetes_manifests_are_valid_and_lock_the_job_down() {
    pytest("test_k8s_manifests.py");
}
