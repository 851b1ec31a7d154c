//! Integration tests of the common crate (one test binary, modules per subject).

mod netfault_bin;
mod netfault_lib;
