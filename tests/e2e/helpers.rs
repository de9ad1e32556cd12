use std::sync::Arc;

use lectern_runtime::{Application, Context, Settings};

/// A running Lectern on a free port, with its own data dir.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub ctx: Arc<Context>,
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
    settings
}

pub async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let ctx = Context::open(test_settings(data_dir.path()), true)
        .await
        .expect("open context");
    let services = vec![
        lectern_ingest::configure(ctx.clone()),
        lectern_query::configure(ctx.clone()),
        lectern_web::configure(ctx.clone()),
    ];
    let app = Application::build(ctx.settings.server.bind, 2, ctx.readiness(), services).unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        ctx,
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
