//! `lectern user ...` and `lectern api-key ...`: accounts and API keys from the command line.

use anyhow::Context as _;
use clap::Subcommand;
use lectern_store::{NewUser, Store};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user (no password: they sign in once the web app sets one, or use API keys).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Make the user a site admin.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create an API key for a user and print it (it is shown only this once).
    Create {
        /// The user's email.
        #[arg(long)]
        user: String,
        /// What the key is for, e.g. "backup script".
        #[arg(long, default_value = "command line")]
        name: String,
    },
}

pub async fn user(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { email, name, admin } => {
            let user = store
                .create_user(NewUser {
                    email,
                    display_name: name,
                    password_hash: None,
                    is_admin: admin,
                })
                .await?;
            println!(
                "created user {} ({}){}",
                user.email,
                user.id,
                if user.is_admin { ", site admin" } else { "" }
            );
        }
    }
    Ok(())
}

pub async fn api_key(store: &Store, command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { user, name } => {
            let found = store
                .find_user_by_email(&user)
                .await?
                .with_context(|| format!("no user with email {user}; create one with `lectern user create --email {user}`"))?;
            let (_, secret) = store.create_api_key(found.id, &name).await?;
            eprintln!(
                "API key for {} (shown only now; keep it secret):",
                found.email
            );
            println!("{secret}");
        }
    }
    Ok(())
}
