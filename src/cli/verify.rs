//! `auspex verify`: checks a whole store offline (every value's frame and CRC, the cross-tree
//! invariants of `store::check`, and the losses of flushed writes the durable mark witnessed).
//! The report goes to stdout; exit 0 when clean, 1 when problems were found, 2 when the store
//! cannot be opened or read (missing, in use by a server, or so damaged that sled fails on it).
//! `--accept-loss` then forgets the recorded losses (the operator takes the store as it is).

use std::process::ExitCode;

use crate::cli::{init_logging, open_store, VerifyArgs};

pub fn main(args: VerifyArgs) -> ExitCode {
    let config = match args.common.resolve() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("auspex: {error:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let path = config.store_path();
    let checked =
        open_store(&config, false).and_then(|store| Ok((store.check_integrity()?, store)));
    let (report, store) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!(
                "auspex: cannot check the store at {}: {error:#}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let checked: Vec<String> = report
        .values_checked
        .iter()
        .map(|(tree, n)| format!("{tree} {n}"))
        .collect();
    println!(
        "store {}: values checked: {}",
        path.display(),
        checked.join(", ")
    );
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if args.accept_loss {
        let lost = store.lost().len();
        if let Err(error) = store.accept_loss() {
            eprintln!("auspex: cannot record the accepted losses: {error}");
            return ExitCode::from(2);
        }
        println!("accepted the lost writes of {lost} scope(s)");
    }
    if report.is_clean() {
        println!("no problems found");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} problem(s) found",
            report.problems.len() as u64 + report.problems_omitted
        );
        ExitCode::from(1)
    }
}
