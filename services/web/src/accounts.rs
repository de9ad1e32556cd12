//! Sign-up, sign-in, sign-out and password change.

use std::time::Instant;

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_store::entity::user;
use lectern_store::{AuditEvent, NewUser, SIGNUP_OPEN};
use uuid::Uuid;

use crate::auth::{
    FormData, MIN_PASSWORD, SignedIn, check_new_password, hash_password, query_map, safe_next,
    sign_in, verify_password,
};
use crate::error::{WebError, WebResult, urlencode};
use crate::mail::{MailThrottle, Mailer};
use crate::oidc::Oidc;
use crate::throttle::{SignInThrottle, describe};
use crate::views::{Layout, flash, page, page_with, redirect};

/// What a disabled person is told when they sign in.
pub const ACCOUNT_DISABLED: &str = "This account is disabled. Ask an administrator to enable it.";

/// Records an audit event; a failure to record is logged, never the user's problem.
pub async fn audit(
    ctx: &Context,
    actor: Option<Uuid>,
    action: &str,
    workspace: Option<Uuid>,
    target: Option<String>,
    detail: Option<serde_json::Value>,
) {
    let event = AuditEvent {
        actor_user_id: actor,
        action: action.into(),
        workspace_id: workspace,
        target,
        detail,
    };
    if let Err(e) = ctx.store.record_audit(event).await {
        tracing::warn!(error = %e, action, "could not record an audit event");
    }
}

/// The client's address for the audit log (a proxy's word only if it is trusted).
fn client_ip(ctx: &Context, req: &HttpRequest) -> Option<serde_json::Value> {
    crate::proxy::client_ip(req, &ctx.settings.web).map(|ip| serde_json::json!({ "ip": ip }))
}

/// Whether people may sign up now: always for the very first account, otherwise as an
/// administrator set it (or the configuration says).
pub async fn signup_open(ctx: &Context) -> Result<bool, Error> {
    if ctx.store.user_count().await? == 0 {
        return Ok(true);
    }
    Ok(
        match ctx.store.site_setting(SIGNUP_OPEN).await?.as_deref() {
            Some(v) => v == "true",
            None => ctx.settings.web.signup,
        },
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    email: String,
    next: String,
    next_encoded: String,
    signup_open: bool,
    oidc_button: Option<String>,
}

async fn login_page(
    ctx: &Context,
    session: &Session,
    oidc: &Oidc,
    email: &str,
    next: String,
    error: Option<String>,
) -> WebResult<LoginPage> {
    Ok(LoginPage {
        layout: Layout::visitor(session, "Sign in"),
        error,
        email: email.to_owned(),
        next_encoded: urlencode(&next),
        next,
        signup_open: signup_open(ctx).await?,
        oidc_button: oidc.button(),
    })
}

pub async fn home(session: Session) -> HttpResponse {
    match session.get::<Uuid>(crate::session::USER_KEY) {
        Ok(Some(_)) => redirect("/workspaces"),
        _ => redirect("/login"),
    }
}

pub async fn login_form(
    ctx: web::Data<Context>,
    oidc: web::Data<Oidc>,
    session: Session,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let next = safe_next(query_map(&req).get("next").map(String::as_str));
    page(&login_page(&ctx, &session, &oidc, "", next, None).await?)
}

pub async fn login(
    ctx: web::Data<Context>,
    oidc: web::Data<Oidc>,
    throttle: web::Data<SignInThrottle>,
    session: Session,
    req: HttpRequest,
    form: FormData,
) -> WebResult<HttpResponse> {
    let email = form.get("email").unwrap_or("").to_lowercase();
    let next = safe_next(form.get("next"));
    let address = crate::proxy::client_ip(&req, &ctx.settings.web);
    if let Some(wait) = throttle.wait(&email, address, Instant::now()) {
        return Err(WebError::Throttled(format!(
            "Too many failed sign-ins. Try again in {}.",
            describe(wait)
        )));
    }
    let user = ctx.store.find_user_by_email(&email).await?;
    let password = form.raw("password").to_owned();
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let matches = verify_password(password, hash).await;
    match user {
        Some(user) if matches && !user.disabled => {
            throttle.succeeded(&email);
            sign_in(&session, user.id)?;
            audit(
                &ctx,
                Some(user.id),
                "account.sign_in",
                None,
                Some(email),
                client_ip(&ctx, &req),
            )
            .await;
            Ok(redirect(&next))
        }
        Some(user) if matches => {
            let message = ACCOUNT_DISABLED;
            audit(
                &ctx,
                Some(user.id),
                "account.sign_in_refused",
                None,
                Some(email.clone()),
                client_ip(&ctx, &req),
            )
            .await;
            let login =
                login_page(&ctx, &session, &oidc, &email, next, Some(message.into())).await?;
            page_with(actix_web::http::StatusCode::FORBIDDEN, &login)
        }
        user => {
            throttle.failed(&email, address, Instant::now());
            audit(
                &ctx,
                user.map(|u| u.id),
                "account.sign_in_failed",
                None,
                Some(email.clone()),
                client_ip(&ctx, &req),
            )
            .await;
            let message = "The email or the password is wrong.";
            let login =
                login_page(&ctx, &session, &oidc, &email, next, Some(message.into())).await?;
            page_with(actix_web::http::StatusCode::UNAUTHORIZED, &login)
        }
    }
}

pub async fn logout(ctx: web::Data<Context>, session: Session) -> HttpResponse {
    if let Ok(Some(user)) = session.get::<Uuid>(crate::session::USER_KEY) {
        audit(&ctx, Some(user), "account.sign_out", None, None, None).await;
    }
    session.purge();
    redirect("/login")
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    error: Option<String>,
    first: bool,
    email: String,
    name: String,
    min_password: usize,
    /// Where to go once signed in (an invitation link opened before signing up).
    next: Option<String>,
}

/// The page to return to after signing up, when the form or the query names one.
fn signup_next(next: Option<&str>) -> Option<String> {
    next.map(|n| safe_next(Some(n)))
}

pub async fn signup_form(
    ctx: web::Data<Context>,
    session: Session,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    if !signup_open(&ctx).await? {
        return Err(Error::Forbidden(
            "Sign-up is closed here. Ask an administrator to create your account.".into(),
        )
        .into());
    }
    page(&SignupPage {
        layout: Layout::visitor(&session, "Create your account"),
        error: None,
        first: ctx.store.user_count().await? == 0,
        email: String::new(),
        name: String::new(),
        min_password: MIN_PASSWORD,
        next: signup_next(query_map(&req).get("next").map(String::as_str)),
    })
}

pub async fn signup(
    ctx: web::Data<Context>,
    mailer: web::Data<Mailer>,
    mail_throttle: web::Data<MailThrottle>,
    session: Session,
    req: HttpRequest,
    form: FormData,
) -> WebResult<HttpResponse> {
    if !signup_open(&ctx).await? {
        return Err(Error::Forbidden(
            "Sign-up is closed here. Ask an administrator to create your account.".into(),
        )
        .into());
    }
    let email = form.get("email").unwrap_or("").to_lowercase();
    let name = form.get("name").unwrap_or("").to_owned();
    let next = signup_next(form.get("next"));
    let login = match &next {
        Some(next) => format!("/login?next={}", urlencode(next)),
        None => "/login".to_owned(),
    };
    let first = ctx.store.user_count().await? == 0;
    let created = async {
        check_new_password(form.raw("password"), &email)?;
        let hash = hash_password(form.raw("password").to_owned()).await?;
        ctx.store
            .create_user(NewUser {
                email: email.clone(),
                display_name: Some(name.clone()).filter(|n| !n.is_empty()),
                password_hash: Some(hash),
                is_admin: first,
                // Typed into a form: anyone's address. Verified by the link sent to it,
                // or by an administrator.
                verified: None,
            })
            .await
    }
    .await;
    match created {
        Ok(user) => {
            audit(
                &ctx,
                Some(user.id),
                "account.sign_up",
                None,
                Some(email),
                client_ip(&ctx, &req),
            )
            .await;
            // Counted against the account only: one message per new address, and people
            // behind one NAT who sign up together do not slow each other's links.
            if let Err(e) = send_verification(&ctx, &mailer, &mail_throttle, &user, None).await {
                // The account exists; its owner can have a link sent again.
                tracing::warn!(error = %e, "could not make a verification link at sign-up");
            }
            if !first {
                flash(&session, signed_up(&mailer));
                return Ok(redirect(&login));
            }
            // The very first account tells nothing about others: it is signed in at once.
            sign_in(&session, user.id)?;
            flash(&session, "Welcome to Lectern. Create a workspace to begin.");
            Ok(redirect(next.as_deref().unwrap_or("/workspaces")))
        }
        // Answered as a new address is (after the same password hashing), so that sign-up
        // does not tell who has an account; nothing changes for the account, and nothing
        // is sent to its address.
        Err(Error::Conflict(_)) => {
            audit(
                &ctx,
                None,
                "account.sign_up_existing",
                None,
                Some(email),
                client_ip(&ctx, &req),
            )
            .await;
            flash(&session, signed_up(&mailer));
            Ok(redirect(&login))
        }
        Err(e @ Error::Invalid(_)) => page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &SignupPage {
                layout: Layout::visitor(&session, "Create your account"),
                error: Some(e.to_string()),
                first,
                email,
                name,
                min_password: MIN_PASSWORD,
                next,
            },
        ),
        Err(e) => Err(e.into()),
    }
}

/// What sign-up answers (but for the very first account), whether or not the address
/// had an account already.
fn signed_up(mailer: &Mailer) -> String {
    let mut message = "If this address was new, its account is ready: sign in with the password you chose. If it had an account already, nothing changed: sign in with that account's password.".to_owned();
    if mailer.enabled() {
        message
            .push_str(" A new account's address gets a link to verify it; it works for 24 hours.");
    }
    message
}

/// Mails `user` a new verification link, when Lectern sends mail, and counts it against
/// the address's allowance ([`MailThrottle`]).
async fn send_verification(
    ctx: &Context,
    mailer: &Mailer,
    throttle: &MailThrottle,
    user: &user::Model,
    address: Option<std::net::IpAddr>,
) -> Result<(), Error> {
    if !mailer.enabled() {
        return Ok(());
    }
    let token = ctx.store.create_email_verification(user).await?;
    let (Some(home), Some(link)) = (
        mailer.link(""),
        mailer.link(&format!("/verify?token={token}")),
    ) else {
        return Ok(());
    };
    mailer.send(
        &user.email,
        "Verify your email address for Lectern",
        format!(
            "Hello,\n\n\
             An account of Lectern at {home} was made with this address. To confirm that the \
             address is yours, open this link within 24 hours:\n\n{link}\n\n\
             If you did not make it, ignore this message: until the address is verified, \
             nothing shared with it reaches that account.\n"
        ),
    );
    throttle.sent(&user.email, address, Instant::now());
    Ok(())
}

/// Opens a verification link (from mail: perhaps in another browser, signed out): the
/// address it was sent to is verified.
pub async fn verify_email(
    ctx: web::Data<Context>,
    session: Session,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let token = query_map(&req).remove("token").unwrap_or_default();
    let Some(user) = ctx.store.redeem_email_verification(&token).await? else {
        return Err(Error::NotFound(
            "This verification link is unknown, used or expired. Sign in and have a new one sent."
                .into(),
        )
        .into());
    };
    audit(
        &ctx,
        Some(user.id),
        "account.email_verified",
        None,
        Some(user.email.clone()),
        Some(serde_json::json!({ "via": "link" })),
    )
    .await;
    flash(
        &session,
        format!(
            "Your address {} is verified: workspaces shared with it now reach you.",
            user.email
        ),
    );
    Ok(home(session).await)
}

/// Sends the signed-in person a new verification link (the notice's button).
pub async fn resend_verification(
    ctx: web::Data<Context>,
    mailer: web::Data<Mailer>,
    throttle: web::Data<MailThrottle>,
    me: SignedIn,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let email = me.user.email.clone();
    let address = crate::proxy::client_ip(&req, &ctx.settings.web);
    let message = if me.user.email_verified_at.is_some() {
        format!("Your address {email} is verified already.")
    } else if !mailer.enabled() {
        format!(
            "Lectern sends no mail here: ask an administrator to verify {email} (lectern user verify {email})."
        )
    } else if let Some(wait) = throttle.wait(&email, address, Instant::now()) {
        format!(
            "A link was sent to {email} a moment ago. Look for it, or ask again in {}.",
            describe(wait)
        )
    } else {
        send_verification(&ctx, &mailer, &throttle, &me.user, address).await?;
        format!("A new link is on its way to {email}; it works for 24 hours.")
    };
    flash(&me.session, message);
    Ok(redirect("/account"))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    email: String,
    verified: bool,
    is_admin: bool,
    has_password: bool,
    error: Option<String>,
    min_password: usize,
}

fn account_page(me: &SignedIn, error: Option<String>) -> AccountPage {
    AccountPage {
        layout: Layout::signed_in(me, "Your account", "account"),
        email: me.user.email.clone(),
        verified: me.user.email_verified_at.is_some(),
        is_admin: me.user.is_admin,
        has_password: me.user.password_hash.is_some(),
        error,
        min_password: MIN_PASSWORD,
    }
}

pub async fn account(me: SignedIn) -> WebResult<HttpResponse> {
    page(&account_page(&me, None))
}

pub async fn change_password(
    ctx: web::Data<Context>,
    me: SignedIn,
    form: FormData,
) -> WebResult<HttpResponse> {
    if me.user.password_hash.is_some()
        && !verify_password(
            form.raw("current").to_owned(),
            me.user.password_hash.clone(),
        )
        .await
    {
        return page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &account_page(&me, Some("The current password is wrong.".into())),
        );
    }
    if let Err(e) = check_new_password(form.raw("new"), &me.user.email) {
        return page_with(
            actix_web::http::StatusCode::BAD_REQUEST,
            &account_page(&me, Some(e.to_string())),
        );
    }
    let hash = hash_password(form.raw("new").to_owned()).await?;
    ctx.store.set_password_hash(me.id(), &hash).await?;
    // Every other session ends; this one continues under a new key.
    sign_in(&me.session, me.id())?;
    let ended = ctx.store.delete_sessions_of(me.id(), None).await?;
    audit(
        &ctx,
        Some(me.id()),
        "account.password_changed",
        None,
        None,
        Some(serde_json::json!({ "sessions_ended": ended })),
    )
    .await;
    flash(
        &me.session,
        "Your password is changed. Other sessions were signed out.",
    );
    Ok(redirect("/account"))
}
