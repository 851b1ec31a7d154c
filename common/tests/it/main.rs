//! Integration tests of the common crate (one test binary, modules per subject).

mod netfault_lib;
