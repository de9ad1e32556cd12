use lectern_runtime::http::ErrorBody;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app().await;

    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok", "{body}");

    // The requests above are counted by route pattern.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            "lectern_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("lectern_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_get_the_json_error_body() {
    let app = spawn_app().await;
    let res = app.get("/v1/no-such-thing").await;
    assert_eq!(res.status(), 404);
    let body: ErrorBody = res.json().await.unwrap();
    assert_eq!(body.code, "not_found");
    assert!(
        body.message.contains("/v1/no-such-thing"),
        "{}",
        body.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.ctx.store.connection().clone().close().await.unwrap();
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_ne!(body["checks"]["database"], "ok", "{body}");
}
