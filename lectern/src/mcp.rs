//! `lectern mcp`: the Model Context Protocol on standard input and output, for assistants
//! that start their tools as child processes (desktop clients, IDEs). The tools act for
//! one caller, fixed here: the holder of an API key, or a user of this machine's Lectern
//! named by its operator. They see what that person sees over the HTTP APIs, no more.

use std::sync::Arc;

use anyhow::Context as _;
use lectern::Local;
use lectern_auth::Caller;
use lectern_runtime::Settings;
use lectern_store::Store;

pub async fn serve(
    settings: Settings,
    api_key: Option<String>,
    user: Option<String>,
) -> anyhow::Result<()> {
    let local = Local::open(settings).await?;
    let caller = caller(&local.store, api_key, user).await?;
    // Without a model, `ask` answers with the passages' own sentences, with a notice.
    let llm = lectern_query::open_llm(&local.settings)?;
    let answerer = Arc::new(local.answerer(llm));
    lectern_query::mcp::serve_stdio(local.ctx.clone(), answerer, caller).await
}

/// Who the tools act for: `--user` when given (the operator's word, on the machine that
/// holds the data), else the API key (`--api-key` or `LECTERN_API_KEY`).
async fn caller(
    store: &Store,
    api_key: Option<String>,
    user: Option<String>,
) -> anyhow::Result<Caller> {
    if let Some(email) = user {
        let user = store
            .find_user_by_email(&email)
            .await?
            .filter(|u| !u.disabled)
            .with_context(|| {
                format!(
                    "no user {email:?} here, or the account is disabled; make one with `lectern user create --email {email}`"
                )
            })?;
        return Ok(Caller { user });
    }
    let key = api_key.context(
        "`lectern mcp` acts for someone: pass --api-key KEY (or set LECTERN_API_KEY), or --user EMAIL for a user of this machine's Lectern",
    )?;
    let user = store
        .user_for_api_key(key.trim())
        .await?
        .context("the API key is not valid (revoked, mistyped or of a disabled user)")?;
    Ok(Caller { user })
}
