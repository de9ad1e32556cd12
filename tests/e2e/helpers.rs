use std::sync::Arc;

use lectern_runtime::{Context, Settings};
use lectern_search::SearchAdapters;

/// A running Lectern on a free port, with its own data dir.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub ctx: Arc<Context>,
    pub search: SearchAdapters,
    _data_dir: tempfile::TempDir,
}

/// Settings for a throw-away embedded instance using the real default model.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    settings.data_dir = data_dir.to_owned();
    settings.server.bind = ([127, 0, 0, 1], 0).into();
    settings.server.workers = 2;
    let model = lectern_embed::testing::default_options();
    settings.embedding.model_dir = model.model_dir;
    settings.embedding.ort_dylib = model.ort_dylib;
    let llm = lectern_llm::testing::smollm2_options();
    settings.llm.model_path = Some(llm.model_path);
    settings.llm.context_length = llm.context_length;
    settings.llm.threads = llm.threads;
    settings.llm.max_tokens = 96;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A running Lectern whose settings `tweak` adjusts first (database URL, service token...).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    tweak(&mut settings);
    let ctx = Context::open(settings, true).await.expect("open context");
    let search = SearchAdapters::open(&ctx.settings)
        .await
        .expect("open the search adapters");
    let llm = lectern_query::open_llm(&ctx.settings).expect("load the model");
    let services = lectern::services_with(&ctx, &search, llm)
        .unwrap()
        .into_iter()
        .map(|(_, routes)| routes)
        .collect();
    let app = ctx.application(2, services).unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        ctx,
        search,
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }
}

impl TestApp {
    /// A new user with an API key: `(user id, key)`.
    pub async fn user_with_key(&self, email: &str) -> (uuid::Uuid, String) {
        let user = self
            .ctx
            .store
            .create_user(lectern_store::NewUser {
                email: email.into(),
                display_name: None,
                password_hash: None,
                is_admin: false,
                verified: Some(lectern_store::EmailProof::Administrator),
            })
            .await
            .unwrap();
        let (_, key) = self
            .ctx
            .store
            .create_api_key(user.id, "tests")
            .await
            .unwrap();
        (user.id, key)
    }

    /// The typed client of the ingest and query APIs, calling with `key`.
    pub fn api(&self, key: &str) -> lectern_api::Client {
        lectern_api::Client::new(
            self.client.clone(),
            &self.address,
            &self.address,
            lectern_api::Auth::ApiKey(key.to_owned()),
        )
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
    }
}
