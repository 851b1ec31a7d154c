//! The tour engine against fixture scenarios (`tests/fixtures/`) played by `tour-fixture`.

mod binary;
mod engine;
mod errors;
mod readme;
mod report;
mod trust;
mod util;
