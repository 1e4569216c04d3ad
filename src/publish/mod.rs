//! Publishing a partition safely, for `crate::sinks`, which owns publishing: one writer
//! per partition ([`lease`]), a publish that a crash at any point cannot leave half done
//! ([`journal`]), where the files live ([`layout`]), what is published, read back
//! ([`published`]), and what a run with `--only` keeps of it ([`kept`]).

pub mod journal;
pub mod kept;
pub mod layout;
pub mod lease;
pub mod published;
