//! Integration tests of the common crate (one test binary, modules per subject).

mod curve_libzmq;
mod curve_transcript;
mod netfault_bin;
mod netfault_lib;
mod netfault_zmq;
