//! `lectern user ...` and `lectern api-key ...`: accounts and API keys from the command line.

use anyhow::Context as _;
use clap::Subcommand;
use lectern_store::{EmailProof, NewUser, Store};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. With `--password-stdin` they sign in to the web app with the
    /// password read from standard input; without, they use API keys or single sign-on.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Make the user a site admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Mark a user's email address verified, on your word as the operator: workspaces
    /// shared with that address then reach the account at once (an unverified account
    /// gets them only through an invitation link).
    Verify {
        /// The user's email.
        email: String,
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
        UserCommand::Create {
            email,
            name,
            admin,
            password_stdin,
        } => {
            let password_hash = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                let password = line.trim_end_matches(['\r', '\n']).to_owned();
                lectern_web::check_new_password(&password, &email)?;
                Some(lectern_web::hash_password(password).await?)
            } else {
                None
            };
            let user = store
                .create_user(NewUser {
                    email,
                    display_name: name,
                    password_hash,
                    is_admin: admin,
                    // The operator made it: the address is theirs to vouch for.
                    verified: Some(EmailProof::Administrator),
                })
                .await?;
            println!(
                "created user {} ({}){}",
                user.email,
                user.id,
                if user.is_admin { ", site admin" } else { "" }
            );
        }
        UserCommand::Verify { email } => {
            let found = store
                .find_user_by_email(&email)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let already = found.email_verified_at.is_some();
            store
                .verify_email(found.id, EmailProof::Administrator)
                .await?;
            store
                .record_audit(lectern_store::AuditEvent {
                    action: "user.email_verified".into(),
                    target: Some(found.email.clone()),
                    detail: Some(serde_json::json!({ "via": "command line" })),
                    ..Default::default()
                })
                .await?;
            if already {
                println!("{} was verified already", found.email);
            } else {
                println!("verified {}", found.email);
            }
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
