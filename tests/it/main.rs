//! The one integration-test binary (one binary links the crate once; modules share `util`).
//!
//! `util` starts servers (in-process on 127.0.0.1:0, or the real binary) and wraps a reqwest client;
//! `http` covers the HTTP surface that does not depend on job behaviour (root document, headers,
//! routing errors, body limits, parameter validation); `cli` covers the binary's startup and exit;
//! `lifecycle` the job workflow and the documented worked examples; `restart` the real binary
//! stopped (SIGTERM) or killed (SIGKILL) and started again on the same data path.

mod cli;
mod http;
mod lifecycle;
mod restart;
mod scenarios;
mod util;
