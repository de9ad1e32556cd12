//! OpenID Connect single sign-on (authorization code flow with PKCE, nonce and state).
//! The provider's metadata and keys are discovered on first use and again every hour (so
//! Lectern starts while the identity provider is down, and follows its key rotation). A
//! person signs in by an email the provider has verified (`email_verified`), so the
//! account's address counts as verified: an account without a password is found by it, or
//! made while sign-up is open. An account that has a password is never
//! taken over by single sign-on: its owner signs in with the password.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use lectern_core::Error;
use lectern_runtime::{Context, OidcSettings};
use lectern_store::{EmailProof, NewUser};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::accounts::audit;
use crate::auth::{query_map, safe_next, sign_in};
use crate::error::WebResult;
use crate::views::redirect;

const PENDING_KEY: &str = "oidc_pending";

/// The configured provider, if any.
pub struct Oidc {
    settings: Option<OidcSettings>,
    metadata: Mutex<Option<(std::time::Instant, CoreProviderMetadata)>>,
    http: openidconnect::reqwest::Client,
}

/// How long discovered metadata and keys are used before they are read again.
const METADATA_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// What the session remembers between the redirect to the provider and its answer.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    redirect: String,
}

fn sso_error(message: impl std::fmt::Display) -> Error {
    Error::Unauthenticated(format!("Single sign-on failed: {message}"))
}

impl Oidc {
    pub fn new(settings: Option<OidcSettings>) -> anyhow::Result<Self> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would open the client to request forgery.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        Ok(Self {
            settings,
            metadata: Mutex::new(None),
            http,
        })
    }

    /// The sign-in button's text, when single sign-on is configured.
    pub fn button(&self) -> Option<String> {
        self.settings.as_ref().map(|s| {
            s.button
                .clone()
                .unwrap_or_else(|| "Sign in with single sign-on".into())
        })
    }

    async fn client(&self, redirect: &str) -> Result<(CoreClientSet, &OidcSettings), Error> {
        let settings = self
            .settings
            .as_ref()
            .ok_or_else(|| Error::NotFound("single sign-on is not configured".into()))?;
        let mut cached = self.metadata.lock().await;
        let metadata = match &*cached {
            Some((at, metadata)) if at.elapsed() < METADATA_TTL => metadata.clone(),
            _ => {
                let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(sso_error)?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| {
                        Error::unavailable(
                            format!(
                                "the identity provider {} did not answer its discovery document",
                                settings.issuer
                            ),
                            e,
                        )
                    })?;
                *cached = Some((std::time::Instant::now(), metadata.clone()));
                metadata
            }
        };
        drop(cached);
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).map_err(sso_error)?);
        Ok((client, settings))
    }
}

type CoreClientSet = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Where the provider sends people back: the configured public address, or this
/// request's own.
fn redirect_uri(ctx: &Context, req: &HttpRequest) -> String {
    format!(
        "{}/auth/oidc/callback",
        crate::proxy::public_base(req, &ctx.settings.web)
    )
}

/// Sends the browser to the identity provider.
pub async fn start(
    ctx: web::Data<Context>,
    oidc: web::Data<Oidc>,
    session: Session,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let redirect_to = redirect_uri(&ctx, &req);
    let (client, _) = oidc.client(&redirect_to).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        next: safe_next(query_map(&req).get("next").map(String::as_str)),
        redirect: redirect_to,
    };
    session
        .insert(PENDING_KEY, &pending)
        .map_err(|e| Error::internal("cannot store the sign-in", e))?;
    Ok(redirect(url.as_str()))
}

/// The provider's answer: check state, exchange the code, verify the ID token (issuer,
/// audience, signature, expiry, nonce), then sign the person in by their email.
pub async fn callback(
    ctx: web::Data<Context>,
    oidc: web::Data<Oidc>,
    session: Session,
    req: HttpRequest,
) -> WebResult<HttpResponse> {
    let query = query_map(&req);
    let pending: Pending = session
        .remove_as(PENDING_KEY)
        .and_then(Result::ok)
        .ok_or_else(|| sso_error("the sign-in expired or was started elsewhere; start again"))?;
    if let Some(error) = query.get("error") {
        return Err(sso_error(format!("the identity provider said {error:?}")).into());
    }
    let state = query.get("state").map(String::as_str).unwrap_or("");
    if lectern_store::secret_hash(state) != lectern_store::secret_hash(&pending.state) {
        return Err(sso_error("the answer does not belong to this sign-in").into());
    }
    let code = query
        .get("code")
        .ok_or_else(|| sso_error("the identity provider sent no code"))?;
    let (client, settings) = oidc.client(&pending.redirect).await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(sso_error)?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&oidc.http)
        .await
        .map_err(|e| sso_error(format!("the code could not be exchanged: {e}")))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| sso_error("the identity provider sent no ID token"))?;
    let claims = id_token
        .claims(
            &client.id_token_verifier(),
            &Nonce::new(pending.nonce.clone()),
        )
        .map_err(|e| sso_error(format!("the ID token is not valid: {e}")))?;
    let email = claims
        .email()
        .map(|e| e.as_str().to_lowercase())
        .ok_or_else(|| sso_error("the identity provider did not share an email address"))?;
    if claims.email_verified() != Some(true) {
        return Err(sso_error(
            "the identity provider has not confirmed that this email address is verified",
        )
        .into());
    }
    let user = match ctx.store.find_user_by_email(&email).await? {
        Some(user) if user.password_hash.is_some() => {
            return Err(Error::Forbidden(format!(
                "The account {email} signs in with its password. Use the form above, or ask an administrator."
            ))
            .into());
        }
        Some(user) => user,
        None => {
            if !crate::accounts::signup_open(&ctx).await? {
                return Err(Error::Forbidden(format!(
                    "There is no Lectern account for {email}, and sign-up is closed. Ask an administrator to create it."
                ))
                .into());
            }
            let first = ctx.store.user_count().await? == 0;
            let name = claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned());
            let user = ctx
                .store
                .create_user(NewUser {
                    email: email.clone(),
                    display_name: name,
                    password_hash: None,
                    is_admin: first,
                    verified: Some(EmailProof::IdentityProvider),
                })
                .await?;
            audit(
                &ctx,
                Some(user.id),
                "account.sign_up",
                None,
                Some(email.clone()),
                Some(serde_json::json!({ "via": settings.issuer })),
            )
            .await;
            user
        }
    };
    if user.disabled {
        return Err(Error::Forbidden(crate::accounts::ACCOUNT_DISABLED.into()).into());
    }
    if user.email_verified_at.is_none() {
        // The provider has just vouched for the address (checked above).
        ctx.store
            .verify_email(user.id, EmailProof::IdentityProvider)
            .await?;
    }
    sign_in(&session, user.id)?;
    audit(
        &ctx,
        Some(user.id),
        "account.sign_in",
        None,
        Some(email),
        Some(serde_json::json!({ "via": settings.issuer })),
    )
    .await;
    Ok(redirect(&pending.next))
}
