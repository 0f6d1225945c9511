//! The one integration-test binary (one binary links the crate once; modules share `util`).
//!
//! `util` starts servers (in-process on 127.0.0.1:0, or the real binary) and wraps a reqwest client;
//! `http` covers the HTTP surface that does not depend on job behaviour (root document, headers,
//! routing errors, body limits, parameter validation); `cli` covers the binary's startup and exit;
//! `lifecycle` the job workflow and the documented worked examples; `restart` the real binary
//! stopped (SIGTERM) or killed (SIGKILL) and started again on the same data path; `cli_replay` the
//! offline commands, the config file and HTTP replay tasks; `metrics` the Prometheus page and JSON
//! logs; `explorer` the embedded explorer (in headless Chromium when it is installed); `kill` the
//! crash harness (SIGKILL at seeded random points of a `workload` script, results equal to an
//! uninterrupted run); `corruption` damaged stores (fallback, clear failures, `auspex verify`);
//! `clients` the official Elasticsearch clients (Python 7/8/9, Node.js 8) running their workflow
//! scripts against the real binary; `snapshots` model snapshots, revert, update, reset, retention
//! and `_cat`; `concurrency` 120 jobs in parallel, ordering and 429 floods; `hostile` fuzzed and
//! oversized input; `resources` a full disk; `failpoints` crashes at named store commit points;
//! `scenarios` seeded synthetic anomalies (spike, dip, shifts, broken seasonality) and clean data;
//! `upgrade_mode` parking open jobs with `set_upgrade_mode`;
//! `influencers` influencer results (scores, paging and filters, interim, deletion paths);
//! `model_plot` model bounds per bucket; `forecast` forecasts, their deletes, stats and expiry;
//! `memory` the model memory limit (hard limit, allocation failures, stats across close and open);
//! `security` every endpoint against every kind of caller, API keys, users and roles, the first
//! start's password, the audit log and HTTPS (servers run with security off unless a test asks);
//! `functions` the other detector functions and population analysis on seeded anomalies of their kind;
//! `population` population influencers, model plot per member and the memory limit against new clients;
//! `renormalize` past scores rescored as the job's history moves (window, splits, restarts, replay);
//! `periods` a seasonal cycle found in the data (neither daily nor weekly) and its break;
//! `gaps` far-future times: the bound on empty buckets per request and invalid dates.

mod categories;
mod cli;
mod cli_replay;
mod clients;
mod concurrency;
mod corruption;
mod explorer;
mod failpoints;
mod forecast;
mod functions;
mod gaps;
mod hostile;
mod http;
mod influencers;
mod kill;
mod lifecycle;
mod memory;
mod metrics;
mod model_plot;
mod periods;
mod population;
mod renormalize;
mod resources;
mod restart;
mod rules;
mod scenarios;
mod security;
mod snapshots;
mod upgrade_mode;
mod util;
mod workload;
