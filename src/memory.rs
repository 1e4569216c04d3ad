//! The run's memory budget: how much memory a run may use and how it is shared out.
//!
//! The budget comes from `--memory-limit` (or `FIDELIS_MEMORY_LIMIT`), else from the
//! container's limit (cgroup v2 `memory.max`, cgroup v1 `memory.limit_in_bytes`) minus
//! headroom, else from a share of physical memory. A run keeps its resident memory
//! under the budget by giving DataFusion's operators a memory pool that spills to disk
//! when full, and by keeping stage results and source data in memory only while they
//! fit in their share of that pool (the rest lives in local files, see [`crate::results`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

use crate::error::{Error, Result};

const MIB: u64 = 1 << 20;

/// Share of the budget given to DataFusion's memory pool. The rest covers what the pool
/// does not see: batches in flight between operators, Parquet pages being decoded or
/// encoded, buffers of the allocator, the program itself.
const POOL_SHARE: f64 = 0.6;

/// Share of the pool that stage results and sources may hold in memory; the remainder is
/// left to the operators (sorts, aggregations, joins), which cannot work without room for
/// a few batches each.
const RESULTS_SHARE: f64 = 0.25;

/// Batch sizes: rows per batch are the pool's bytes over this, between the bounds. A row
/// of the pipeline's tables takes 50-200 bytes, an operator holds a few batches, and
/// a dozen operators may share the pool.
const BYTES_PER_BATCH_ROW: usize = 16384;
const MIN_BATCH_ROWS: usize = 1024;
const MAX_BATCH_ROWS: usize = 32 * 1024;

/// Headroom left under a container's limit: 10 %, at least 256 MiB, so that what the pool
/// does not see never meets the kernel's OOM killer.
const CONTAINER_HEADROOM_SHARE: f64 = 0.1;
const CONTAINER_HEADROOM_MIN: u64 = 256 * MIB;

/// Share of physical memory used when neither a limit nor a container says otherwise.
const PHYSICAL_SHARE: f64 = 0.75;

/// How many of the largest memory consumers an out-of-memory error names.
const CONSUMERS_NAMED: usize = 5;

/// The memory a run may use, and where that figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes the whole process may hold.
    pub bytes: u64,
    pub origin: Origin,
}

/// Where a memory budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--memory-limit` or `FIDELIS_MEMORY_LIMIT`.
    Given,
    /// The container's limit (these bytes), minus headroom.
    Container(u64),
    /// A share of the machine's physical memory (these bytes).
    Physical(u64),
    /// Nothing could be read: a fixed default.
    Unknown,
}

impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", human(self.bytes))?;
        match self.origin {
            Origin::Given => write!(f, " (--memory-limit)"),
            Origin::Container(limit) => write!(f, " (container limit {} minus headroom)", human(limit)),
            Origin::Physical(total) => {
                write!(f, " ({:.0} % of {} physical memory)", PHYSICAL_SHARE * 100.0, human(total))
            }
            Origin::Unknown => write!(f, " (default)"),
        }
    }
}

impl MemoryBudget {
    /// The budget given on the command line, or the one the machine implies.
    pub fn resolve(given: Option<u64>) -> MemoryBudget {
        match given {
            Some(bytes) => MemoryBudget { bytes, origin: Origin::Given },
            None => Self::from_machine(Path::new("/")),
        }
    }

    /// The budget implied by the container limit or physical memory, reading `/proc` and
    /// `/sys` below `root` (a test passes a fake tree).
    fn from_machine(root: &Path) -> MemoryBudget {
        if let Some(limit) = container_limit(root) {
            let headroom = ((limit as f64 * CONTAINER_HEADROOM_SHARE) as u64).max(CONTAINER_HEADROOM_MIN);
            return MemoryBudget {
                bytes: limit.saturating_sub(headroom).max(limit / 2),
                origin: Origin::Container(limit),
            };
        }
        match physical_memory(root) {
            Some(total) => {
                MemoryBudget { bytes: (total as f64 * PHYSICAL_SHARE) as u64, origin: Origin::Physical(total) }
            }
            None => MemoryBudget { bytes: 4096 * MIB, origin: Origin::Unknown },
        }
    }

    /// Bytes of DataFusion's memory pool.
    pub fn pool_bytes(&self) -> usize {
        usize::try_from((self.bytes as f64 * POOL_SHARE) as u64).unwrap_or(usize::MAX)
    }

    /// Rows per batch: 32 Ki rows (fewer, cheaper steps through the operators on tables of
    /// millions of rows), fewer under a budget so small that an operator could not hold
    /// a few batches of that size in its share of the pool.
    pub fn batch_rows(&self) -> usize {
        (self.pool_bytes() / BYTES_PER_BATCH_ROW).clamp(MIN_BATCH_ROWS, MAX_BATCH_ROWS)
    }

    /// Bytes a sort sets aside for merging its spill files: DataFusion's 10 MB, less under
    /// a budget so small that 10 MB would not leave the sort room to sort anything.
    pub fn sort_spill_reservation_bytes(&self) -> usize {
        (self.pool_bytes() / 64).min(10 << 20)
    }

    /// Bytes of the pool that stage results and sources may hold in memory.
    pub fn results_bytes(&self) -> usize {
        (self.pool_bytes() as f64 * RESULTS_SHARE) as usize
    }

    /// A DataFusion runtime whose operators share a pool of [`Self::pool_bytes`] fairly
    /// and spill to a folder created below `spill_dir`, removed when the runtime is dropped.
    pub fn runtime(&self, spill_dir: &Path) -> Result<Arc<RuntimeEnv>> {
        let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(self.pool_bytes()),
            std::num::NonZeroUsize::new(CONSUMERS_NAMED).expect("a positive count"),
        ));
        let disk = DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()]));
        RuntimeEnvBuilder::new()
            .with_memory_pool(pool)
            .with_disk_manager_builder(disk)
            .build_arc()
            .map_err(|error| Error::runtime(format!("cannot use spill folder {}", spill_dir.display()), error))
    }
}

/// The folder spill files go to by default: the system's temporary folder.
pub fn default_spill_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Parses a size such as `4GiB`, `512MiB`, `2G`, `1.5GiB`, `800MB` or a number of bytes.
/// Binary units (KiB, MiB, GiB, TiB) and their one-letter forms (K, M, G, T) are powers of
/// 1024; decimal units (KB, MB, GB, TB) are powers of 1000.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let invalid = || format!("`{text}` is not a size: write e.g. 4GiB, 512MiB or 2G");
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// Bytes in binary units, e.g. `3.6 GiB`, for logs and messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// The memory limit of the cgroup this process runs in, if it has one: the smallest limit
/// of its cgroup and the cgroups above it (v2 `memory.max`, v1 `memory.limit_in_bytes`).
fn container_limit(root: &Path) -> Option<u64> {
    let cgroups = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    let mounts = std::fs::read_to_string(root.join("proc/self/mountinfo")).unwrap_or_default();
    let mut limits = Vec::new();
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (file, mount) = match controllers {
            "" => ("memory.max", mount_point(&mounts, |kind, _| kind == "cgroup2")),
            list if list.split(',').any(|c| c == "memory") => (
                "memory.limit_in_bytes",
                mount_point(&mounts, |kind, options| kind == "cgroup" && options.split(',').any(|o| o == "memory")),
            ),
            _ => continue,
        };
        let Some(mount) = mount else { continue };
        let mount = root.join(mount.trim_start_matches('/'));
        // Inside a container the mount's root is often the container's own cgroup, so
        // the path of /proc/self/cgroup may not exist below it: also read the mount root.
        let mut folder = PathBuf::from(path.trim_start_matches('/'));
        loop {
            if let Some(limit) = read_limit(&mount.join(&folder).join(file)) {
                limits.push(limit);
            }
            if !folder.pop() {
                break;
            }
        }
    }
    limits.into_iter().min()
}

/// The mount point of the first mount whose filesystem type and super options match.
fn mount_point(mountinfo: &str, matches: impl Fn(&str, &str) -> bool) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        // `id parent major:minor root mount-point options [optional…] - type source super-options`
        let (left, right) = line.split_once(" - ")?;
        let mut after = right.split_whitespace();
        let (kind, _source, options) = (after.next()?, after.next()?, after.next().unwrap_or(""));
        matches(kind, options).then(|| left.split_whitespace().nth(4).map(str::to_string)).flatten()
    })
}

/// A limit file's value; `max` and the huge values v1 uses for "no limit" are none.
fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let value: u64 = text.trim().parse().ok()?;
    (value < 1 << 60).then_some(value)
}

/// `MemTotal` of `/proc/meminfo`.
fn physical_memory(root: &Path) -> Option<u64> {
    let meminfo = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_and_decimal_units() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("800MB"), Ok(800_000_000));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in ["", "GiB", "4 gigabytes", "-1G", "0", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(4 << 30), "4.0 GiB");
        assert_eq!(human(3_865_470_566), "3.6 GiB");
    }

    /// A fake `/proc` and `/sys` tree with the given files.
    fn machine(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("temporary folder");
        for (path, content) in files {
            let file = root.path().join(path);
            std::fs::create_dir_all(file.parent().expect("a folder")).expect("folders");
            std::fs::write(file, content).expect("file");
        }
        root
    }

    const MEMINFO: &str = "MemTotal:       25165824 kB\nMemFree:        1000 kB\n";

    #[test]
    fn cgroup_v2_limit_minus_headroom() {
        let root = machine(&[
            ("proc/self/cgroup", "0::/kubepods/pod1/c1\n"),
            ("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"),
            ("sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.max", "8589934592\n"),
            ("proc/meminfo", MEMINFO),
        ]);
        let budget = MemoryBudget::from_machine(root.path());
        assert_eq!(budget.origin, Origin::Container(8 << 30));
        // 10 % of 8 GiB is more than 256 MiB.
        assert_eq!(budget.bytes, (8 << 30) - ((8u64 << 30) as f64 * 0.1) as u64);
    }

    #[test]
    fn cgroup_v2_namespace_root_holds_the_limit() {
        // With a cgroup namespace, /proc/self/cgroup says `/` and the limit is at the mount root.
        let root = machine(&[
            ("proc/self/cgroup", "0::/\n"),
            ("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            ("sys/fs/cgroup/memory.max", "1073741824\n"),
        ]);
        let budget = MemoryBudget::from_machine(root.path());
        assert_eq!(budget.origin, Origin::Container(1 << 30));
        assert_eq!(budget.bytes, (1 << 30) - (256 << 20), "at least 256 MiB of headroom");
    }

    #[test]
    fn cgroup_v1_limit_and_unlimited_value() {
        let mountinfo = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
        let limited = machine(&[
            ("proc/self/cgroup", "4:memory:/docker/abc\n1:cpu:/\n"),
            ("proc/self/mountinfo", mountinfo),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "4294967296\n"),
            ("proc/meminfo", MEMINFO),
        ]);
        assert_eq!(MemoryBudget::from_machine(limited.path()).origin, Origin::Container(4 << 30));
        // The value v1 shows without a limit (this machine's, too) means physical memory applies.
        let unlimited = machine(&[
            ("proc/self/cgroup", "4:memory:/process_api/0f56\n"),
            ("proc/self/mountinfo", mountinfo),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("proc/meminfo", MEMINFO),
        ]);
        let budget = MemoryBudget::from_machine(unlimited.path());
        assert_eq!(budget.origin, Origin::Physical(24 << 30));
        assert_eq!(budget.bytes, 18 << 30);
    }

    #[test]
    fn nothing_readable_gives_a_fixed_default() {
        let empty = machine(&[]);
        assert_eq!(MemoryBudget::from_machine(empty.path()).origin, Origin::Unknown);
    }

    #[test]
    fn a_given_limit_wins() {
        let budget = MemoryBudget::resolve(Some(4 << 30));
        assert_eq!(budget, MemoryBudget { bytes: 4 << 30, origin: Origin::Given });
        assert_eq!(budget.to_string(), "4.0 GiB (--memory-limit)");
        assert_eq!(budget.batch_rows(), 32 * 1024);
        // 16 MiB: a pool of 9.6 MiB, 614 rows by the rule, at least 1024.
        assert_eq!(MemoryBudget::resolve(Some(16 << 20)).batch_rows(), 1024);
        assert_eq!(MemoryBudget::resolve(Some(256 << 20)).batch_rows(), 9830);
        assert_eq!(MemoryBudget::resolve(Some(1 << 20)).batch_rows(), 1024);
    }
}
