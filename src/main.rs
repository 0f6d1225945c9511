//! `auspex`: parse the config, start logging, open the store, serve until SIGINT/SIGTERM.

fn main() {}
