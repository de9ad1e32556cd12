//! Single sign-on against a small OpenID Connect provider made here: discovery, the
//! redirect with state, nonce and PKCE, the code exchange, and the ID token's signature,
//! audience and nonce checked by Lectern.

use std::net::TcpListener;
use std::sync::Mutex;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use lectern_runtime::OidcSettings;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::web::{Browser, Page};

struct Provider {
    issuer: String,
    key: CoreRsaPrivateSigningKey,
    /// The nonce the next ID token carries.
    nonce: Mutex<String>,
    /// The audience the next ID token names.
    audience: Mutex<String>,
    /// The email the next ID token carries, and whether it is marked verified.
    email: Mutex<(String, bool)>,
}

async fn discovery(p: web::Data<Provider>) -> HttpResponse {
    let i = &p.issuer;
    HttpResponse::Ok().json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(p: web::Data<Provider>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "keys": [p.key.as_verification_key()] }))
}

async fn token(
    p: web::Data<Provider>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // The client authenticates with its secret, and proves the PKCE verifier.
    assert!(
        req.headers().contains_key("authorization"),
        "client authentication"
    );
    assert_eq!(field("code").as_deref(), Some("the-code"));
    assert!(
        field("code_verifier").is_some_and(|v| v.len() >= 43),
        "PKCE verifier"
    );
    let now = chrono::Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(p.issuer.clone()).unwrap(),
        vec![Audience::new(p.audience.lock().unwrap().clone())],
        now + chrono::Duration::minutes(5),
        now,
        {
            let (email, verified) = p.email.lock().unwrap().clone();
            StandardClaims::new(SubjectIdentifier::new("person-1".into()))
                .set_email(Some(EndUserEmail::new(email)))
                .set_email_verified(Some(verified))
        },
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(p.nonce.lock().unwrap().clone())));
    let id_token = CoreIdToken::new(
        claims,
        &p.key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .unwrap();
    HttpResponse::Ok().json(json!({
        "access_token": "access",
        "token_type": "bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
}

fn rsa_pem() -> String {
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl makes the provider's key");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The whole round trip: to the provider and back with its answer for this sign-in.
async fn sso(browser: &mut Browser, provider: &Provider) -> Page {
    let q = query_of(&browser.get("/auth/oidc?next=/chat").await.location.unwrap());
    *provider.nonce.lock().unwrap() = q["nonce"].clone();
    browser
        .get(&format!(
            "/auth/oidc/callback?code=the-code&state={}",
            q["state"]
        ))
        .await
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_signs_people_in_with_a_verified_id_token() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = web::Data::new(Provider {
        issuer: issuer.clone(),
        key: CoreRsaPrivateSigningKey::from_pem(&rsa_pem(), Some(JsonWebKeyId::new("k1".into())))
            .unwrap(),
        nonce: Mutex::new(String::new()),
        audience: Mutex::new("lectern".into()),
        email: Mutex::new(("Sso.Person@Example.org".into(), true)),
    });
    let data = provider.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/jwks", web::get().to(jwks))
            .route("/token", web::post().to(token))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);

    let app = spawn_app_with(|s| {
        s.web.oidc = Some(OidcSettings {
            issuer: issuer.clone(),
            client_id: "lectern".into(),
            client_secret: Some("client-secret".into()),
            button: Some("Sign in with Example SSO".into()),
        });
    })
    .await;
    let mut browser = Browser::new(&app);
    let login = browser.get("/login?next=/chat").await;
    assert!(
        login.body.contains("Sign in with Example SSO"),
        "{}",
        login.body
    );

    let start = browser.get("/auth/oidc?next=/chat").await;
    assert_eq!(start.status, 303);
    let to = start.location.unwrap();
    assert!(to.starts_with(&format!("{issuer}/authorize?")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["client_id"], "lectern");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/auth/oidc/callback", app.address)
    );
    assert!(q["scope"].contains("openid") && q["scope"].contains("email"));

    // An answer for another sign-in (wrong state) is refused.
    let forged = browser
        .get("/auth/oidc/callback?code=the-code&state=forged")
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);

    // An ID token for another client is refused.
    let q = query_of(&browser.get("/auth/oidc?next=/chat").await.location.unwrap());
    *provider.nonce.lock().unwrap() = q["nonce"].clone();
    *provider.audience.lock().unwrap() = "another-client".into();
    let wrong_audience = browser
        .get(&format!(
            "/auth/oidc/callback?code=the-code&state={}",
            q["state"]
        ))
        .await;
    assert_eq!(wrong_audience.status, 401, "{}", wrong_audience.body);
    *provider.audience.lock().unwrap() = "lectern".into();

    // A replayed token (another sign-in's nonce) is refused.
    let q = query_of(&browser.get("/auth/oidc?next=/chat").await.location.unwrap());
    *provider.nonce.lock().unwrap() = "an old nonce".into();
    let replayed = browser
        .get(&format!(
            "/auth/oidc/callback?code=the-code&state={}",
            q["state"]
        ))
        .await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    assert!(
        app.ctx
            .store
            .find_user_by_email("sso.person@example.org")
            .await
            .unwrap()
            .is_none()
    );

    // An address the provider has not verified is refused.
    *provider.email.lock().unwrap() = ("sso.person@example.org".into(), false);
    assert_eq!(sso(&mut browser, &provider).await.status, 401);
    // An account with a password is not taken over by an identity provider.
    app.ctx
        .store
        .create_user(lectern_store::NewUser {
            email: "admin@example.org".into(),
            display_name: None,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into()),
            is_admin: true,
            verified: Some(lectern_store::EmailProof::Administrator),
        })
        .await
        .unwrap();
    *provider.email.lock().unwrap() = ("admin@example.org".into(), true);
    let takeover = sso(&mut browser, &provider).await;
    assert_eq!(takeover.status, 403, "{}", takeover.body);
    assert!(
        takeover.body.contains("signs in with its password"),
        "{}",
        takeover.body
    );
    *provider.email.lock().unwrap() = ("Sso.Person@Example.org".into(), true);

    // The real answer signs the person in, by their email.
    let q = query_of(&browser.get("/auth/oidc?next=/chat").await.location.unwrap());
    *provider.nonce.lock().unwrap() = q["nonce"].clone();
    let signed_in = browser
        .get(&format!(
            "/auth/oidc/callback?code=the-code&state={}",
            q["state"]
        ))
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/chat"));
    let user = app
        .ctx
        .store
        .find_user_by_email("sso.person@example.org")
        .await
        .unwrap()
        .expect("the account is made");
    assert!(
        user.password_hash.is_none(),
        "SSO accounts have no password here"
    );
    assert!(
        user.email_verified_at.is_some(),
        "the provider verified the address"
    );
    assert_eq!(browser.get("/workspaces").await.status, 200);
}
