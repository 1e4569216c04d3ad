//! A publish killed at any point is repaired: rolled back before its commit point,
//! completed after it, by `fidelis repair` or by the next run; and `_SUCCESS` never stands
//! beside a partition mixing two runs. Every step of the publish is tried, on local disk
//! and on S3 (moto), with a real `fidelis` process that aborts there (as with SIGKILL).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{BUCKET, Output, Running, S3Server, Workspace, transactions_pipeline};

const AS_OF: &str = "2024-01-31";
const SUCCESS: &str = "_runs/as_of=2024-01-31/_SUCCESS";
const MANIFEST: &str = "_runs/as_of=2024-01-31/manifest.json";
const GOOD: &str = "order_id,customer_id,order_ts,amount,kind\nO1,C1,2024-01-01,10.00,\nO2,C2,2024-01-02,20.00,\n";
/// SIGABRT: how a process ends at a failure point armed with `abort`.
const ABORTED: i32 = 6;

/// The partition of the first run (`before`: a quarantined row) and what the second run
/// publishes when nothing goes wrong (`after`: one more order, no quarantine).
struct Scenario {
    ws: Workspace,
    pipeline: PathBuf,
    before: BTreeMap<String, Vec<u8>>,
    after: BTreeMap<String, Vec<u8>>,
}

/// Which run's partition a state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partition {
    Before,
    After,
}

impl Scenario {
    async fn new(output: &Output) -> Scenario {
        let ws = Workspace::new();
        let stages = "  first:\n    query: SELECT customer_id, amount FROM transactions\n  second:\n    query: SELECT customer_id FROM first";
        let pipeline = ws.write("pipeline.yaml", transactions_pipeline("quarantine", stages, "first, second"));
        ws.write("first/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,-5.00,\n"));
        ws.write("second/transactions/t.csv", format!("{GOOD}O3,C3,2024-01-03,30.00,\n"));
        let reference = Output::local(&ws, "reference");
        let scenario = Scenario { ws, pipeline, before: BTreeMap::new(), after: BTreeMap::new() };
        scenario.succeed(scenario.run(output, "first"));
        scenario.succeed(scenario.run(&reference, "second"));
        let (before, after) = (output.contents().await, reference.contents().await);
        assert!(before.contains_key("_quarantine/transactions/as_of=2024-01-31/part-00000.parquet"));
        assert!(!after.keys().any(|key| key.starts_with("_quarantine/")));
        Scenario { before, after, ..scenario }
    }

    /// `fidelis run` of the scenario's pipeline on input `input` into `output`.
    fn run(&self, output: &Output, input: &str) -> Command {
        let mut command = output.fidelis();
        command.arg("run").arg(&self.pipeline).args(["--as-of", AS_OF, "--lease-ttl", "1s"]);
        command.arg("--set").arg(format!("input={}", self.ws.path(input).display()));
        command.arg("--set").arg(format!("output={}", output.url));
        command
    }

    /// `fidelis repair` of the scenario's partition in `output`, waiting for a dead run's lease.
    fn repair(&self, output: &Output) -> Command {
        let mut command = output.fidelis();
        command.arg("repair").arg(&self.pipeline).args([
            "--as-of",
            AS_OF,
            "--wait-for-lock",
            "1m",
            "--lease-ttl",
            "1s",
        ]);
        command.arg("--set").arg(format!("output={}", output.url));
        command
    }

    fn succeed(&self, mut command: Command) -> String {
        let out = command.output().expect("fidelis runs");
        assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `command` until its failure point aborts it.
    fn crash(&self, command: Command, name: &str) -> Option<()> {
        let ended = Running::start(command, &self.ws, name).finish();
        if ended.code == Some(0) {
            return None;
        }
        assert_eq!(ended.signal, Some(ABORTED), "{name}: {}", ended.stderr);
        Some(())
    }

    /// Which run's partition `state` is, looking at what readers see (not staging or
    /// journals); fails if it is neither wholly one nor the other.
    fn partition(&self, state: &BTreeMap<String, Vec<u8>>) -> Partition {
        let visible: BTreeMap<&String, &Vec<u8>> =
            state.iter().filter(|(key, _)| !key.starts_with("_staging/") && !key.contains("/_publish/")).collect();
        if visible == self.before.iter().collect() {
            return Partition::Before;
        }
        let keys: Vec<&String> = visible.keys().copied().collect();
        assert_eq!(keys, self.after.keys().collect::<Vec<_>>(), "a mixed partition");
        for (key, bytes) in &visible {
            if *key != MANIFEST {
                assert!(*bytes == &self.after[*key], "{key} is neither run's: a mixed partition");
            }
        }
        let rows = |bytes: &[u8]| {
            let manifest: serde_json::Value = serde_json::from_slice(bytes).expect("a manifest");
            (manifest["tables"]["first"]["rows"].clone(), manifest["tables"]["second"]["rows"].clone())
        };
        assert_eq!(
            rows(visible[&MANIFEST.to_string()]),
            rows(&self.after[MANIFEST]),
            "the manifest is the second run's"
        );
        Partition::After
    }

    /// Crashes the second run's publish at every step in turn; after each, checks what
    /// readers may see, repairs, and checks the partition is one run's, whole.
    async fn crash_at_every_publish_step(&self, output: &Output) {
        let mut outcomes = Vec::new();
        for step in 1.. {
            output.restore(&self.before).await;
            let mut command = self.run(output, "second");
            command.env("FIDELIS_FAILPOINT", format!("publish:{step}=abort"));
            if self.crash(command, &format!("publish-{step}")).is_none() {
                break;
            }
            let crashed = output.contents().await;
            if crashed.contains_key(SUCCESS) {
                self.partition(&crashed);
            }
            let said = self.succeed(self.repair(output));
            let repaired = output.contents().await;
            assert!(
                !repaired.keys().any(|key| key.starts_with("_staging/") || key.contains("/_publish/")),
                "{repaired:?}"
            );
            assert!(repaired.contains_key(SUCCESS), "step {step}: _SUCCESS is back after the repair");
            let repair = ["nothing to repair", "rolled back the publish of run", "completed the publish of run"]
                .into_iter()
                .find(|message| said.starts_with(message))
                .unwrap_or_else(|| panic!("step {step}: {said}"));
            outcomes.push((self.partition(&repaired), repair));
        }
        // Steps: the journal, _SUCCESS removed, 3 files (each copied aside, then moved),
        // the commit marker, 4 removals (the quarantine, the 3 previous versions), _SUCCESS,
        // the journal, its marker (left alone, it means nothing).
        let mut expected = vec![(Partition::Before, "nothing to repair")];
        expected.extend([(Partition::Before, "rolled back the publish of run"); 8]);
        expected.extend([(Partition::After, "completed the publish of run"); 6]);
        expected.push((Partition::After, "nothing to repair"));
        assert_eq!(outcomes, expected);
    }
}

#[tokio::test]
async fn a_publish_killed_at_any_step_on_local_disk_is_repaired() {
    let ws = Workspace::new();
    let output = Output::local(&ws, "out");
    Scenario::new(&output).await.crash_at_every_publish_step(&output).await;
}

#[tokio::test]
async fn a_publish_killed_at_any_step_on_s3_is_repaired() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let output = Output::s3(&server, "warehouse");
    Scenario::new(&output).await.crash_at_every_publish_step(&output).await;
}

#[tokio::test]
async fn a_repair_killed_at_any_step_is_finished_by_the_next() {
    let ws = Workspace::new();
    let output = Output::local(&ws, "out");
    let scenario = Scenario::new(&output).await;
    // Killed before the commit point (rolled back) and after it (completed).
    for (publish_step, partition) in [(8, Partition::Before), (12, Partition::After)] {
        let mut repairs = 0;
        for step in 1.. {
            output.restore(&scenario.before).await;
            let mut run = scenario.run(&output, "second");
            run.env("FIDELIS_FAILPOINT", format!("publish:{publish_step}=abort"));
            scenario.crash(run, &format!("publish-{publish_step}-{step}")).expect("the publish is killed");
            let mut repair = scenario.repair(&output);
            repair.env("FIDELIS_FAILPOINT", format!("recover:{step}=abort"));
            if scenario.crash(repair, &format!("recover-{publish_step}-{step}")).is_none() {
                break;
            }
            scenario.succeed(scenario.repair(&output));
            assert_eq!(scenario.partition(&output.contents().await), partition, "killed at recovery step {step}");
            repairs += 1;
        }
        assert!(repairs >= 3, "a recovery has several steps, each tried: {repairs}");
    }
}

#[tokio::test]
async fn the_next_run_rolls_back_an_interrupted_publish_then_publishes() {
    let ws = Workspace::new();
    let output = Output::local(&ws, "out");
    let scenario = Scenario::new(&output).await;
    let mut run = scenario.run(&output, "second");
    run.env("FIDELIS_FAILPOINT", "publish:6=abort");
    scenario.crash(run, "killed").expect("the publish is killed");
    assert!(!output.contents().await.contains_key(SUCCESS), "no _SUCCESS while the partition is half published");

    let mut rerun = scenario.run(&output, "second");
    rerun.args(["--wait-for-lock", "1m"]);
    let out = rerun.output().expect("fidelis runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rolled back the publish of run"), "{stderr}");
    assert_eq!(scenario.partition(&output.contents().await), Partition::After);
}
