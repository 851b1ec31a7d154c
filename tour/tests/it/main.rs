//! The tour engine against fixture scenarios (`tests/fixtures/`) played by `tour-fixture`, and
//! the walk over every binary's numeric flags (`flags`).

mod binary;
mod engine;
mod errors;
mod flags;
mod readme;
mod report;
mod trust;
mod util;
