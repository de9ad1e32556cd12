//! Site administration: people (disable, make admin, vouch for their address), sign-up,
//! workspaces, audit log.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_store::entity::user;
use lectern_store::{EmailProof, SIGNUP_OPEN};
use uuid::Uuid;

use crate::accounts::{audit, signup_open};
use crate::auth::{Admin, FormData};
use crate::error::WebResult;
use crate::views::{Layout, flash, page, redirect};

pub struct AuditRow {
    pub at: String,
    pub who: String,
    pub action: String,
    pub workspace: String,
    pub target: String,
}

/// A workspace as the site's administrator sees it: names are unique per owner only, so
/// the owner tells same-named ones apart.
pub struct WorkspaceRow {
    pub id: Uuid,
    pub name: String,
    pub owner: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    layout: Layout,
    me: Uuid,
    signup_open: bool,
    users: Vec<user::Model>,
    workspaces: Vec<WorkspaceRow>,
    audit: Vec<AuditRow>,
}

pub async fn overview(ctx: web::Data<Context>, Admin(me): Admin) -> WebResult<HttpResponse> {
    let users = ctx.store.users().await?;
    let workspaces = ctx.store.all_workspaces().await?;
    let emails: HashMap<Uuid, &str> = users.iter().map(|u| (u.id, u.email.as_str())).collect();
    let workspaces: Vec<WorkspaceRow> = workspaces
        .iter()
        .map(|w| WorkspaceRow {
            id: w.id,
            name: w.name.clone(),
            owner: w
                .owner_id
                .and_then(|id| emails.get(&id))
                .map_or_else(|| "no owner".to_owned(), |e| (*e).to_owned()),
            created: w.created_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    let names = labels(&workspaces);
    let audit = ctx
        .store
        .recent_audit(200)
        .await?
        .into_iter()
        .map(|e| AuditRow {
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            who: e
                .actor_user_id
                .map(|id| {
                    emails
                        .get(&id)
                        .map(|e| (*e).to_owned())
                        .unwrap_or_else(|| id.to_string())
                })
                .unwrap_or_else(|| "—".into()),
            action: e.action.replace(['_', '.'], " "),
            workspace: e
                .workspace_id
                .map(|id| {
                    names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| "(deleted)".into())
                })
                .unwrap_or_default(),
            target: e.target.unwrap_or_default(),
        })
        .collect();
    page(&AdminPage {
        layout: Layout::signed_in(&me, "Administration", "admin"),
        me: me.id(),
        signup_open: signup_open(&ctx).await?,
        users,
        workspaces,
        audit,
    })
}

/// Each workspace's name, with its owner where another workspace has the same name.
fn labels(workspaces: &[WorkspaceRow]) -> HashMap<Uuid, String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for w in workspaces {
        *count.entry(w.name.as_str()).or_default() += 1;
    }
    workspaces
        .iter()
        .map(|w| {
            let label = if count[w.name.as_str()] > 1 {
                format!("{} ({})", w.name, w.owner)
            } else {
                w.name.clone()
            };
            (w.id, label)
        })
        .collect()
}

pub async fn set_signup(
    ctx: web::Data<Context>,
    Admin(me): Admin,
    form: FormData,
) -> WebResult<HttpResponse> {
    let open = form.get("open") == Some("true");
    ctx.store
        .set_site_setting(SIGNUP_OPEN, if open { "true" } else { "false" })
        .await?;
    audit(
        &ctx,
        Some(me.id()),
        if open {
            "site.signup_opened"
        } else {
            "site.signup_closed"
        },
        None,
        None,
        None,
    )
    .await;
    flash(
        &me.session,
        if open {
            "Sign-up is open."
        } else {
            "Sign-up is closed."
        },
    );
    Ok(redirect("/admin"))
}

pub async fn change_user(
    ctx: web::Data<Context>,
    Admin(me): Admin,
    path: web::Path<Uuid>,
    form: FormData,
) -> WebResult<HttpResponse> {
    let id = path.into_inner();
    let action = form.require("action", "the action")?;
    // Vouching for one's own address is allowed: an administrator is trusted with others'.
    if id == me.id() && action != "verify" {
        return Err(Error::Invalid(
            "you cannot disable yourself or remove your own admin role; ask another administrator"
                .into(),
        )
        .into());
    }
    let user = ctx
        .store
        .user(id)
        .await?
        .ok_or_else(|| Error::NotFound("no such user".into()))?;
    match action {
        "disable" => {
            ctx.store.set_user_disabled(id, true).await?;
            ctx.store.delete_sessions_of(id, None).await?;
        }
        "enable" => ctx.store.set_user_disabled(id, false).await?,
        "make_admin" => ctx.store.set_user_admin(id, true).await?,
        "revoke_admin" => ctx.store.set_user_admin(id, false).await?,
        "verify" => {
            ctx.store
                .verify_email(id, EmailProof::Administrator)
                .await?
        }
        other => return Err(Error::Invalid(format!("unknown action {other:?}")).into()),
    }
    let (event, done) = match action {
        "disable" => ("user.disabled", "is disabled and signed out"),
        "enable" => ("user.enabled", "may sign in again"),
        "make_admin" => ("user.admin_granted", "is now an administrator"),
        "verify" => (
            "user.email_verified",
            "is verified: workspaces shared with it now reach the account",
        ),
        _ => ("user.admin_revoked", "is no longer an administrator"),
    };
    audit(
        &ctx,
        Some(me.id()),
        event,
        None,
        Some(user.email.clone()),
        None,
    )
    .await;
    flash(&me.session, format!("{} {done}.", user.email));
    Ok(redirect("/admin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_named_workspaces_are_told_apart_by_owner() {
        let row = |n: u128, name: &str, owner: &str| WorkspaceRow {
            id: Uuid::from_u128(n),
            name: name.into(),
            owner: owner.into(),
            created: "2026-11-30".into(),
        };
        let labels = labels(&[
            row(1, "Handbook", "ana@example.org"),
            row(2, "Handbook", "bo@example.org"),
            row(3, "Travel", "ana@example.org"),
        ]);
        assert_eq!(labels[&Uuid::from_u128(1)], "Handbook (ana@example.org)");
        assert_eq!(labels[&Uuid::from_u128(2)], "Handbook (bo@example.org)");
        assert_eq!(labels[&Uuid::from_u128(3)], "Travel");
    }
}
