pub mod charts;
pub mod filters;
pub mod format;
