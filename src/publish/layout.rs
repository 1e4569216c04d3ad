//! Where a published partition's files live: the one definition of the layout
//! `{root}/{table}/as_of={as_of}/part-00000.parquet` and of the runs folder beside the
//! tables, for the sink that writes them and everything that reads them back.

use chrono::NaiveDate;

use crate::storage::Location;

/// The partition folder of `table` for `as_of`: `{root}/{table}/as_of={as_of}/`. A table
/// may be a path below the root, e.g. `_quarantine/orders`.
pub fn partition(root: &Location, table: &str, as_of: NaiveDate) -> Location {
    let mut location = root.clone();
    for segment in table.split('/') {
        location = location.child(segment);
    }
    location.child(&format!("{AS_OF}{as_of}"))
}

/// The as_of of a partition folder named `as_of=YYYY-MM-DD`, if `folder` is one.
pub fn partition_as_of(folder: &str) -> Option<NaiveDate> {
    folder.strip_prefix(AS_OF)?.parse().ok()
}

/// The prefix of a partition folder's name.
const AS_OF: &str = "as_of=";

/// The single data file of `table`'s partition for `as_of`.
pub fn table_file(root: &Location, table: &str, as_of: NaiveDate) -> Location {
    partition(root, table, as_of).child(&part_file_name("parquet"))
}

/// The name of a folder's single data file in `extension`'s format: `part-00000.parquet`.
pub fn part_file_name(extension: &str) -> String {
    format!("part-00000.{extension}")
}

/// `{root}/_runs/as_of={as_of}`: the partition's manifest, `_SUCCESS`, lease and journals.
pub fn runs_folder(root: &Location, as_of: NaiveDate) -> Location {
    partition(root, RUNS, as_of)
}

/// The folder of the runs folders, below the output root.
pub const RUNS: &str = "_runs";
