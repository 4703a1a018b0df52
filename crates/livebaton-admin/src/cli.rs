//! Runs a parsed command line.

use crate::accounts::Role;
use crate::config::{Cli, Command, UserCommand};
use crate::seed::upsert_user;
use crate::server::{open_store, serve};

/// Runs `cli`.
///
/// # Errors
/// Whatever the command failed with, for `main` to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::User(UserCommand::Add { email, password, role, name }) => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("role must be admin, editor or viewer"))?;
            let store = open_store(&cli.settings).await?;
            let user = upsert_user(&store, &email, &password, role, name.as_deref()).await?;
            println!("{} {} ({})", user.email, user.name, user.role);
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
