//! Runs a parsed command line.

use crate::accounts::Role;
use crate::config::{Cli, Command, Settings, UserCommand};
use crate::seed::put_user;
use crate::server::{open_store, serve};

/// Runs `cli`.
///
/// # Errors
/// Whatever the command failed with, for `main` to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::User(UserCommand::Add { email, password, password_stdin, role, name }) => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("role must be admin, editor or viewer"))?;
            let password = match password.filter(|_| !password_stdin) {
                Some(password) => password,
                None => tokio::task::spawn_blocking(read_password).await??,
            };
            let store = open_store(&cli.settings).await?;
            let changed = put_user(&store, &email, &password, role, name.as_deref()).await?;
            let user = changed.user.ok_or_else(|| anyhow::anyhow!("{email} was deleted meanwhile"))?;
            println!("{} {} ({})", user.email, user.name, user.role);
            if changed.revoked {
                close_sockets(&cli.settings, user.id).await;
            }
            Ok(())
        }
        Command::User(UserCommand::List) => {
            let store = open_store(&cli.settings).await?;
            for user in store.list_users().await? {
                println!("{}\t{}\t{}", user.email, user.role, user.name);
            }
            Ok(())
        }
    }
}

/// After a password or role change (the user's sessions and tokens are revoked already): tells a cluster to close the
/// user's sockets. A server that is not clustered cannot be reached from here; its sockets stay open, and the writes
/// of their pages are refused.
async fn close_sockets(settings: &Settings, user_id: i64) {
    let redis = match settings.redis() {
        Ok(Some(redis)) => redis,
        Ok(None) => return,
        Err(error) => {
            eprintln!("warning: the cluster was not told to close the user's live connections: {error:#}");
            return;
        }
    };
    let config = livebaton::pubsub::RedisConfig::default();
    match crate::live::announce_revocation_over_redis(redis, config, user_id).await {
        Ok(()) => eprintln!("told the cluster to close the user's live connections"),
        Err(error) => eprintln!("warning: the cluster was not told to close the user's live connections: {error:#}"),
    }
}

/// The password on the first line of standard input (a prompt, without echo, when it is a terminal), so it never
/// appears in the process list as `--password` does.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = String::new();
    if terminal {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        let _echo = EchoOff::new();
        stdin.lock().read_line(&mut line)?;
        eprintln!();
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "no password given: write it on standard input (or set LIVEBATON_USER_PASSWORD, or pass --password)"
    );
    Ok(password.to_owned())
}

/// Turns the terminal's echo off until dropped (Unix; elsewhere the password is echoed).
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> Self {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr and tcsetattr only read and write the termios struct given, for file descriptor 0.
            unsafe {
                let mut termios: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut termios) != 0 {
                    return EchoOff { saved: None };
                }
                let saved = termios;
                termios.c_lflag &= !libc::ECHO;
                if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &termios) != 0 {
                    return EchoOff { saved: None };
                }
                EchoOff { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
