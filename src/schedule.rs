//! The order a run does its work in: which source to load, which stage to run and which
//! stage's data tests to run next, given what is done. Loads, stages and tests are jobs
//! alike, so a slow load never holds back a stage that is ready; among ready stages, the
//! one with the longest chain of stages after it goes first, since that chain sets when
//! the run can end. A stage's tests are a job of their own once it has run: the stages
//! reading it do not wait for them (a failure still stops the run before anything is
//! published), and they go before any other ready job, since what they read is held
//! until they are done. Sources whose checks can stop the run (a stale or half-empty
//! input) are loaded before any stage runs, so such a run stops before computing
//! anything.

use std::collections::HashSet;

use crate::config::Stage;

/// Work to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job<'p> {
    /// Load this source (it is registered when the job is done).
    Load(&'p str),
    /// Run the stage at this index of the plan.
    Run(usize),
    /// Run the data tests of the stage at this index, which has run.
    Test(usize),
    /// Skip the stage at this index: it reads `missing`, which was skipped.
    Skip { stage: usize, missing: &'p str },
}

/// Which jobs are waiting, started and done in one run.
pub struct Schedule<'p> {
    stages: &'p [&'p Stage],
    stage_names: HashSet<&'p str>,
    /// Sources some stage reads.
    sources: HashSet<&'p str>,
    /// Sources to load before any stage runs, in this order.
    first: Vec<&'p str>,
    /// Stage indices not started yet, most urgent first.
    waiting: Vec<usize>,
    /// Stages run whose tests have not started, in the order they finished.
    untested: Vec<usize>,
    /// Stages and sources done (skipped stages included).
    done: HashSet<&'p str>,
    skipped: HashSet<&'p str>,
    loading: HashSet<&'p str>,
}

impl<'p> Schedule<'p> {
    /// `stages` in dependency order; `sources`, the sources they read; `first`, those of
    /// them to load before any stage runs.
    pub fn new(
        stages: &'p [&'p Stage],
        sources: impl IntoIterator<Item = &'p str>,
        first: impl IntoIterator<Item = &'p str>,
    ) -> Self {
        // How many stages, at most, run one after another from each stage to the end.
        let mut chain = vec![1usize; stages.len()];
        for (index, stage) in stages.iter().enumerate().rev() {
            let longest_after = stages[index + 1..]
                .iter()
                .zip(&chain[index + 1..])
                .filter(|(later, _)| later.depends_on.contains(&stage.name))
                .map(|(_, length)| *length)
                .max()
                .unwrap_or(0);
            chain[index] = 1 + longest_after;
        }
        let mut waiting: Vec<usize> = (0..stages.len()).collect();
        // Stable: equally urgent stages keep the pipeline's order.
        waiting.sort_by_key(|&index| std::cmp::Reverse(chain[index]));
        Schedule {
            stages,
            stage_names: stages.iter().map(|s| s.name.as_str()).collect(),
            sources: sources.into_iter().collect(),
            first: first.into_iter().collect(),
            waiting,
            untested: Vec::new(),
            done: HashSet::new(),
            skipped: HashSet::new(),
            loading: HashSet::new(),
        }
    }

    /// The most urgent job that can start now, marked started; `None` when every job
    /// that can start has (wait for one to finish), or nothing is left.
    pub fn next_job(&mut self) -> Option<Job<'p>> {
        if !self.untested.is_empty() {
            return Some(Job::Test(self.untested.remove(0)));
        }
        if let Some(&source) = self.first.iter().find(|s| !self.done.contains(*s) && !self.loading.contains(*s)) {
            self.loading.insert(source);
            return Some(Job::Load(source));
        }
        // Until they are loaded, other sources may load but no stage runs.
        let held = self.first.iter().any(|source| !self.done.contains(source));
        for position in 0..self.waiting.len() {
            let index = self.waiting[position];
            let reads = || self.stages[index].depends_on.iter().map(String::as_str);
            if !reads().filter(|name| self.stage_names.contains(name)).all(|name| self.done.contains(name)) {
                continue;
            }
            if let Some(missing) = reads().find(|name| self.skipped.contains(name)) {
                self.waiting.remove(position);
                return Some(Job::Skip { stage: index, missing });
            }
            let mut unloaded =
                reads().filter(|name| self.sources.contains(name) && !self.done.contains(name)).peekable();
            if unloaded.peek().is_none() {
                if held {
                    continue;
                }
                self.waiting.remove(position);
                return Some(Job::Run(index));
            }
            if let Some(source) = unloaded.find(|name| !self.loading.contains(name)) {
                self.loading.insert(source);
                return Some(Job::Load(source));
            }
        }
        None
    }

    /// `source` is loaded.
    pub fn loaded(&mut self, source: &'p str) {
        self.loading.remove(source);
        self.done.insert(source);
    }

    /// The stage at `index` finished (`skipped`: without a result, and so without tests).
    pub fn finished(&mut self, index: usize, skipped: bool) {
        let name = self.stages[index].name.as_str();
        self.done.insert(name);
        if skipped {
            self.skipped.insert(name);
        } else if !self.stages[index].tests.is_empty() {
            self.untested.push(index);
        }
    }

    /// Stages not started yet.
    pub fn waiting(&self) -> &[usize] {
        &self.waiting
    }
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::config::quality::Declared;
    use crate::config::{DataTest, OnError, Severity, TestKind};

    fn stage(name: &str, reads: &[&str]) -> Stage {
        Stage {
            name: name.into(),
            description: None,
            sql: String::new(),
            origin: String::new(),
            file: None,
            depends_on: reads.iter().map(|r| r.to_string()).collect(),
            sql_reads: reads.iter().map(|r| r.to_string()).collect(),
            counts: IndexMap::new(),
            facts: Vec::new(),
            on_error: OnError::Fail,
            tests: Vec::new(),
        }
    }

    /// Starts every job that can start, as `Load(x)`, `Run(x)` or `Skip(x)`.
    fn start_all<'p>(schedule: &mut Schedule<'p>, stages: &[&Stage]) -> Vec<String> {
        std::iter::from_fn(|| schedule.next_job())
            .map(|job| match job {
                Job::Load(source) => format!("Load({source})"),
                Job::Run(index) => format!("Run({})", stages[index].name),
                Job::Test(index) => format!("Test({})", stages[index].name),
                Job::Skip { stage, .. } => format!("Skip({})", stages[stage].name),
            })
            .collect()
    }

    #[test]
    fn the_longest_chain_goes_first_and_loads_do_not_wait_for_each_other() {
        let owned = [
            stage("stg_small", &["small"]),
            stage("stg_big", &["big"]),
            stage("a", &["stg_big"]),
            stage("b", &["a"]),
            stage("report", &["b", "stg_small"]),
        ];
        let stages: Vec<&Stage> = owned.iter().collect();
        let mut schedule = Schedule::new(&stages, ["small", "big"], []);
        // stg_big heads a chain of four, stg_small one of two: big loads first.
        assert_eq!(start_all(&mut schedule, &stages), ["Load(big)", "Load(small)"]);
        schedule.loaded("small");
        assert_eq!(start_all(&mut schedule, &stages), ["Run(stg_small)"]);
        schedule.loaded("big");
        assert_eq!(start_all(&mut schedule, &stages), ["Run(stg_big)"]);
        schedule.finished(1, false);
        assert_eq!(start_all(&mut schedule, &stages), ["Run(a)"]);
        schedule.finished(2, false);
        schedule.finished(0, false);
        assert_eq!(start_all(&mut schedule, &stages), ["Run(b)"]);
        schedule.finished(3, false);
        assert_eq!(start_all(&mut schedule, &stages), ["Run(report)"]);
        assert!(schedule.waiting().is_empty());
    }

    #[test]
    fn a_stage_reading_a_skipped_stage_is_skipped_without_loading_its_sources() {
        let owned = [stage("first", &[]), stage("second", &["first", "source"])];
        let stages: Vec<&Stage> = owned.iter().collect();
        let mut schedule = Schedule::new(&stages, ["source"], []);
        assert_eq!(start_all(&mut schedule, &stages), ["Run(first)"]);
        schedule.finished(0, true);
        assert_eq!(schedule.next_job(), Some(Job::Skip { stage: 1, missing: "first" }));
        assert_eq!(schedule.next_job(), None);
    }

    #[test]
    fn sources_checked_first_load_before_any_stage_runs() {
        let owned = [stage("stg_small", &["small"]), stage("stg_checked", &["checked"]), stage("b", &["stg_checked"])];
        let stages: Vec<&Stage> = owned.iter().collect();
        let mut schedule = Schedule::new(&stages, ["small", "checked"], ["checked"]);
        assert_eq!(start_all(&mut schedule, &stages), ["Load(checked)", "Load(small)"]);
        // stg_small could run, but `checked` is not loaded (and checked) yet.
        schedule.loaded("small");
        assert_eq!(start_all(&mut schedule, &stages), Vec::<String>::new());
        schedule.loaded("checked");
        assert_eq!(start_all(&mut schedule, &stages), ["Run(stg_checked)", "Run(stg_small)"]);
    }

    #[test]
    fn a_stages_tests_go_first_once_it_has_run_and_its_readers_do_not_wait_for_them() {
        let mut tested = stage("tested", &["source"]);
        tested.tests.push(DataTest {
            name: "not_null_tested_id".into(),
            kind: TestKind::NotNull { column: "id".into() },
            severity: Severity::Error,
            error_if: "> 0".parse().expect("a threshold"),
            warn_if: "> 0".parse().expect("a threshold"),
            description: None,
            declared: Declared { file: String::new(), location: None },
        });
        let owned = [tested, stage("reader", &["tested"]), stage("other", &["source"]), stage("last", &["other"])];
        let stages: Vec<&Stage> = owned.iter().collect();
        let mut schedule = Schedule::new(&stages, ["source"], []);
        assert_eq!(start_all(&mut schedule, &stages), ["Load(source)"]);
        schedule.loaded("source");
        assert_eq!(start_all(&mut schedule, &stages), ["Run(tested)", "Run(other)"]);
        schedule.finished(0, false);
        assert_eq!(start_all(&mut schedule, &stages), ["Test(tested)", "Run(reader)"]);
        // A stage without tests, or skipped, has none to run.
        schedule.finished(2, false);
        schedule.finished(1, true);
        assert_eq!(start_all(&mut schedule, &stages), ["Run(last)"]);
    }
}
