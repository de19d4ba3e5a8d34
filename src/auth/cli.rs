//! `phone2mqtt user ...` and `phone2mqtt token ...`: the user file of a config's data directory,
//! changed in place; a running gateway sees the change at its next request.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};

use crate::auth::store::{self, Store};
use crate::auth::Role;

/// `user add NAME --role ROLE`: the password is one line on stdin (asked for twice, unechoed,
/// when stdin is a terminal).
pub fn user_add(data_dir: &Path, name: &str, role: Role) -> anyhow::Result<()> {
    store::check_name(name)?;
    let password = if std::io::stdin().is_terminal() {
        let first = prompt_hidden(&format!("Password for {name}: "))?;
        store::check_password(&first)?;
        let again = prompt_hidden("Again: ")?;
        if again != first {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    let store = Store::new(data_dir);
    store.add_user(name, role, &password)?;
    println!(
        "User `{name}` ({role}) added to {}.",
        store.path().display()
    );
    Ok(())
}

pub fn user_list(data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::new(data_dir);
    let file = store.load()?;
    if file.users.is_empty() {
        println!(
            "No users in {}: add one with `phone2mqtt user add NAME --role admin`.",
            store.path().display()
        );
    }
    for user in &file.users {
        println!("{:<24} {}", user.name, user.role);
    }
    Ok(())
}

pub fn user_remove(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    Store::new(data_dir).remove_user(name)?;
    println!("User `{name}` removed; its sessions end at their next request.");
    Ok(())
}

/// `token create NAME --role ROLE`: the token is the last line printed, and the only time it is
/// shown.
pub fn token_create(data_dir: &Path, name: &str, role: Role) -> anyhow::Result<()> {
    let token = Store::new(data_dir).create_token(name, role)?;
    println!(
        "Token `{name}` ({role}) created. It is shown only now: REST and /ws take it as `Authorization: Bearer <token>`{mqtt}.",
        mqtt = if role >= Role::Operator {
            format!(", the embedded MQTT broker as user `{name}` with the token as password")
        } else {
            String::new()
        }
    );
    println!("{token}");
    Ok(())
}

pub fn token_list(data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::new(data_dir);
    let file = store.load()?;
    if file.tokens.is_empty() {
        println!(
            "No API tokens in {}: create one with `phone2mqtt token create NAME --role operator`.",
            store.path().display()
        );
    }
    for token in &file.tokens {
        println!(
            "{:<24} {:<9} created {}",
            token.name, token.role, token.created
        );
    }
    Ok(())
}

pub fn token_revoke(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    Store::new(data_dir).revoke_token(name)?;
    println!("Token `{name}` revoked.");
    Ok(())
}

/// Reads one line from the terminal with echo off.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
