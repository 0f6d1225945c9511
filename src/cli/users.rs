//! `auspex users add|passwd|delete|list` and `auspex roles add|delete|list`: managing the
//! `security` tree offline, on a data path no server is using (a locked-out operator's way back,
//! like Elasticsearch's `elasticsearch-users` and `elasticsearch-reset-password`). The same
//! `security` calls as the `_security` API, so the same rules and hashes.
//!
//! A password comes from `--password`, or the first line of stdin with `--password-stdin`;
//! without either, one is generated and printed once on stdout.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::{flush_store, offline, open_store};
use crate::config::{CommonArgs, Config};
use crate::security::{generate_password, RoleDescriptor, Security, UserChange};

/// `auspex users`.
#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user (or replace its password and roles)
    Add(UserAdd),
    /// Set a user's password
    Passwd(UserPasswd),
    /// Delete a user and invalidate its API keys
    Delete(Named),
    /// List the users and their roles
    List(Listing),
}

/// `auspex roles`.
#[derive(Debug, clap::Args)]
pub struct RolesArgs {
    #[command(subcommand)]
    pub command: RolesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RolesCommand {
    /// Add (or replace) a custom role with cluster privileges
    Add(RoleAdd),
    /// Delete a custom role
    Delete(Named),
    /// List the roles (built-in and custom) and their cluster privileges
    List(Listing),
}

#[derive(Debug, clap::Args)]
pub struct PasswordArgs {
    /// The password (visible to other local users in the process list; see --password-stdin)
    #[arg(long, short = 'p', conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub struct UserAdd {
    #[command(flatten)]
    pub common: CommonArgs,
    pub username: String,
    /// Roles, comma-separated (e.g. machine_learning_admin)
    #[arg(long, short = 'r', value_delimiter = ',', required = true)]
    pub roles: Vec<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, clap::Args)]
pub struct UserPasswd {
    #[command(flatten)]
    pub common: CommonArgs,
    pub username: String,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, clap::Args)]
pub struct RoleAdd {
    #[command(flatten)]
    pub common: CommonArgs,
    pub name: String,
    /// Cluster privileges, comma-separated (e.g. monitor_ml,manage_own_api_key)
    #[arg(long, value_delimiter = ',', required = true)]
    pub cluster: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct Named {
    #[command(flatten)]
    pub common: CommonArgs,
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct Listing {
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn users(args: UsersArgs) -> ExitCode {
    match args.command {
        UsersCommand::Add(add) => with_security(&add.common, |security| {
            let password = password(&add.password)?;
            let change = UserChange {
                password: Some(password.value.clone()),
                roles: Some(add.roles.clone()),
                ..UserChange::default()
            };
            crate::security::check_password(&password.value)?;
            let created = security.put_user(&add.username, change)?;
            let verb = if created { "added" } else { "updated" };
            eprintln!("user [{}] {verb}", add.username);
            password.show();
            Ok(())
        }),
        UsersCommand::Passwd(passwd) => with_security(&passwd.common, |security| {
            let password = password(&passwd.password)?;
            security.change_password(&passwd.username, &password.value)?;
            eprintln!("password of user [{}] changed", passwd.username);
            password.show();
            Ok(())
        }),
        UsersCommand::Delete(named) => with_security(&named.common, |security| {
            let now = chrono::Utc::now().timestamp_millis();
            if !security.delete_user(&named.name, now)? {
                anyhow::bail!("no user [{}]", named.name);
            }
            eprintln!("user [{}] deleted, its API keys invalidated", named.name);
            Ok(())
        }),
        UsersCommand::List(listing) => with_security(&listing.common, |security| {
            for user in security.users(None)? {
                let state = if user.enabled { "" } else { " (disabled)" };
                println!("{}: {}{state}", user.username, user.roles.join(","));
            }
            Ok(())
        }),
    }
}

pub fn roles(args: RolesArgs) -> ExitCode {
    match args.command {
        RolesCommand::Add(add) => with_security(&add.common, |security| {
            let role = RoleDescriptor::parse(&add.name, &json!({ "cluster": add.cluster }))?;
            let created = security.put_role(&add.name, &role)?;
            let verb = if created { "added" } else { "updated" };
            eprintln!("role [{}] {verb}", add.name);
            Ok(())
        }),
        RolesCommand::Delete(named) => with_security(&named.common, |security| {
            if !security.delete_role(&named.name)? {
                anyhow::bail!("no custom role [{}]", named.name);
            }
            eprintln!("role [{}] deleted", named.name);
            Ok(())
        }),
        RolesCommand::List(listing) => with_security(&listing.common, |security| {
            for (name, role) in security.roles(None)? {
                println!("{name}: {}", role.cluster.join(","));
            }
            Ok(())
        }),
    }
}

/// Opens the store (creating it for a fresh data path), runs `body`, flushes.
fn with_security(
    common: &CommonArgs,
    body: impl FnOnce(&Security) -> anyhow::Result<()>,
) -> ExitCode {
    offline(common, |config: Config| {
        let store = open_store(&config, true)?;
        let security = Security::new(store.clone(), true).context("cannot start security")?;
        body(&security)?;
        flush_store(&store)
    })
}

/// A password and whether it was generated (then it is shown once).
struct Password {
    value: String,
    generated: bool,
}

impl Password {
    fn show(&self) {
        if self.generated {
            println!("{}", self.value);
            eprintln!("(generated password above; it is shown only this once)");
        }
    }
}

fn password(args: &PasswordArgs) -> anyhow::Result<Password> {
    let value = match (&args.password, args.password_stdin) {
        (Some(given), _) => given.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => {
            return Ok(Password {
                value: generate_password()?,
                generated: true,
            })
        }
    };
    crate::security::check_password(&value)?;
    Ok(Password {
        value,
        generated: false,
    })
}
