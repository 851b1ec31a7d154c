//! Process tests of the Freelance binaries: faults (kill -9, SIGSTOP, restart), every server
//! down, malformed requests, libzmq peers in both directions, and the tour's scenario.

mod accounting;
mod curve;
mod examples;
mod guard;
mod interop;
mod malformed;
mod model1;
mod model2;
mod model3;
mod partition;
mod scenario;
mod signals;
mod util;
