//! Server configuration: command line flags and their environment variables, validated once.
//!
//! The command line is `auspex [serve] [flags]`: `serve` is the default subcommand, so later
//! subcommands can sit beside it without changing how the server is started today.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "auspex",
    version,
    about = "Anomaly-detection job engine speaking the Elasticsearch ML API",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The `serve` flags, when `serve` is not spelled out.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(Config),
    /// Check a whole store offline (every value's CRC and the cross-tree invariants); exits 1 if
    /// anything is wrong, 2 if the store cannot be opened. Run it while no server uses the data path.
    Verify(VerifyArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Data path of the store to check (the store is <data>/store).
    #[arg(long, env = "AUSPEX_DATA", default_value = "data")]
    pub data: PathBuf,
}

impl Cli {
    /// The server config, whichever way it was given.
    pub fn into_serve_config(self) -> Config {
        match self.command {
            Some(Command::Serve(config)) => config,
            _ => self.serve,
        }
    }
}

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "auspex")]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "AUSPEX_LISTEN", default_value = "127.0.0.1:9200")]
    pub listen: SocketAddr,
    /// Data path (like Elasticsearch's path.data): the store lives in <data>/store.
    #[arg(long, env = "AUSPEX_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Largest request body accepted, e.g. 100mb (http.max_content_length).
    #[arg(long, env = "AUSPEX_MAX_CONTENT_LENGTH", default_value = "100mb", value_parser = parse_byte_size)]
    pub max_content_length: u64,
    /// Longest a request body may take to arrive once its headers are in, e.g. 60s or 500ms; a
    /// client that stalls mid-body gets a 408 and the connection is closed.
    #[arg(long, env = "AUSPEX_BODY_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_read_timeout: std::time::Duration,
}

/// `60s`, `500ms`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, millis) = match lower.strip_suffix("ms") {
        Some(digits) => (digits, true),
        None => (lower.strip_suffix('s').unwrap_or(&lower), false),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("failed to parse [{text}] as a duration (e.g. 60s, 500ms)"))?;
    Ok(if millis {
        std::time::Duration::from_millis(number)
    } else {
        std::time::Duration::from_secs(number)
    })
}

/// `100mb`, `512kb`, `1gb`, `1048576b` or a plain byte count.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("failed to parse [{text}] as a byte size"))?;
    let factor: u64 = match unit {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "failed to parse [{text}] as a byte size: unknown unit [{unit}]"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("byte size [{text}] is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default_subcommand() {
        use clap::Parser;
        let implicit = Cli::parse_from(["auspex", "--listen", "127.0.0.1:0", "--data", "d"])
            .into_serve_config();
        let explicit =
            Cli::parse_from(["auspex", "serve", "--listen", "127.0.0.1:0", "--data", "d"])
                .into_serve_config();
        for config in [implicit, explicit] {
            assert_eq!(config.listen.port(), 0);
            assert_eq!(config.data, PathBuf::from("d"));
            assert_eq!(config.max_content_length, 100 << 20);
        }
        assert!(Cli::try_parse_from(["auspex", "bogus"]).is_err());
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("100mb"), Ok(100 << 20));
        assert_eq!(parse_byte_size("1KB"), Ok(1024));
        assert_eq!(parse_byte_size("42"), Ok(42));
        assert!(parse_byte_size("ten").is_err());
        assert!(parse_byte_size("5zb").is_err());
    }
}
