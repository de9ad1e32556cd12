//! The web app in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver) from Rust. One person signs up, creates a workspace, uploads a real
//! PDF, waits for it, asks, watches the answer stream, opens a citation on its page and
//! gives feedback. Screenshots of the main pages are saved under
//! `$LECTERN_SCREENSHOTS` (default: `screenshots/` in the cargo target dir).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::spawn_app_with;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver (scripts/setup-system.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1360,1000", "--lang=en-US"],
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    for attempt in 0..50 {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) if attempt < 49 => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    }
    unreachable!()
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("LECTERN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"))
                .join("screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn wait_for(client: &Client, css: &str, seconds: u64) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(seconds))
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear within {seconds} s: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uploads_asks_and_checks_a_citation_in_chromium() {
    let app = spawn_app_with(|s| {
        s.llm.max_tokens = 128;
    })
    .await;
    let driver = Driver::start();
    let client = connect(&driver).await;
    let base = &app.address;

    // Sign up: the first account.
    client.goto(&format!("{base}/signup")).await.unwrap();
    shot(&client, "signup").await;
    fill(&client, "#email", "ada@example.org").await;
    fill(&client, "#password", "a long enough passphrase").await;
    click(&client, "form[action='/signup'] button[type=submit]").await;
    wait_for(&client, "form[action='/workspaces']", 20).await;

    // A workspace, then a real PDF uploaded through the page.
    fill(&client, "#name", "Papers").await;
    click(&client, "form[action='/workspaces'] button[type=submit]").await;
    let input = wait_for(&client, "#files", 20).await;
    let pdf = std::path::Path::new(
        &std::env::var("LECTERN_DEV_QA_DIR").expect("LECTERN_DEV_QA_DIR (scripts/fetch-dev-qa.sh)"),
    )
    .join("sample-sigconf.pdf");
    input.send_keys(pdf.to_str().unwrap()).await.unwrap();
    click(&client, "#upload button[type=submit]").await;
    // The page reloads with the document, whose status updates live until ready.
    wait_for(&client, "tr[data-status]", 30).await;
    wait_for(&client, "tr[data-status='ready']", 300).await;
    let row = client
        .find(Locator::Css("tr[data-status='ready']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("ready"), "{row}");
    shot(&client, "documents").await;

    // Ask, and watch the answer arrive piece by piece.
    click(&client, "a[href^='/chat?ws=']").await;
    wait_for(&client, "#question", 20).await;
    client
        .execute(
            "window.__streamed = []; window.__sourcesBeforeText = null; new MutationObserver(() => { const t = document.querySelector('.exchange.streaming .text'); const s = document.querySelector('.exchange.streaming .sources-preview li'); if (s && window.__sourcesBeforeText === null) window.__sourcesBeforeText = !(t && t.textContent); if (t && t.textContent) window.__streamed.push(t.textContent.length); }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});",
            vec![],
        )
        .await
        .unwrap();
    fill(
        &client,
        "#question",
        "Which typeface family does the acmart document class require?",
    )
    .await;
    click(&client, "#ask button[type=submit]").await;
    // The sources, shown while the answer is still being written (the screenshot is the
    // view a person has while waiting).
    // (A fast model may finish first; the assertion on the order of events is below.)
    if client
        .wait()
        .at_most(Duration::from_secs(120))
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(
            ".exchange.streaming .sources-preview li, #messages .exchange:not(.streaming) .answer .text",
        ))
        .await
        .is_ok()
        && client
            .find(Locator::Css(".exchange.streaming .sources-preview li"))
            .await
            .is_ok()
    {
        shot(&client, "answer-streaming").await;
    }
    let answer = wait_for(
        &client,
        "#messages .exchange:not(.streaming) .answer .text",
        300,
    )
    .await;
    let text = answer.text().await.unwrap();
    assert!(!text.trim().is_empty(), "an answer is shown");
    let streamed = client
        .execute("return window.__streamed;", vec![])
        .await
        .unwrap();
    let lengths: Vec<u64> = streamed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    let mut distinct = lengths.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "the answer grew in steps while streaming: {lengths:?}"
    );
    // The sources were on the page before the first word of the answer.
    let sources_first = client
        .execute("return window.__sourcesBeforeText;", vec![])
        .await
        .unwrap();
    assert_eq!(
        sources_first,
        serde_json::Value::Bool(true),
        "the sources are shown as soon as retrieval ends"
    );
    let url = client.current_url().await.unwrap();
    assert!(
        url.path().starts_with("/chat/"),
        "the conversation has its address: {url}"
    );

    // Open the first citation: the side panel shows the passage and the page.
    let cite = wait_for(&client, "#messages ol.sources li a.cite", 10).await;
    wait_for(&client, "#messages .answer .text a.cite", 10).await;
    let source = cite.text().await.unwrap();
    let page: u32 = source
        .rsplit("page ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the source names its page: {source}"));
    shot(&client, "answer").await;
    cite.click().await.unwrap();
    let panel = wait_for(&client, "#panel .citation mark", 30).await;
    assert!(
        !panel.text().await.unwrap().trim().is_empty(),
        "the cited span is marked"
    );
    let panel_text = client
        .find(Locator::Css("#panel"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(panel_text.contains(&format!("page {page}")), "{panel_text}");
    let image = wait_for(&client, "#panel figure.page svg image", 30).await;
    let href = image.attr("href").await.unwrap().unwrap();
    assert!(href.ends_with(&format!("/pages/{page}.png")), "{href}");
    wait_for(&client, "#panel svg rect.hl", 10).await;
    let original = client
        .find(Locator::Css("#panel a[href*='/original#page=']"))
        .await
        .unwrap();
    assert!(
        original
            .attr("href")
            .await
            .unwrap()
            .unwrap()
            .ends_with(&format!("#page={page}"))
    );
    // The page image is a real rendering.
    let loaded = client
        .execute(
            "const i = new Image(); i.src = arguments[0]; return new Promise(r => { i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); });",
            vec![json!(href)],
        )
        .await
        .unwrap();
    assert!(
        loaded.as_u64().unwrap_or(0) > 500,
        "the page image loads: {loaded}"
    );
    shot(&client, "citation").await;
    client
        .execute(
            "document.querySelector('#panel figure.page').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    shot(&client, "citation-page").await;

    // Feedback.
    click(&client, "form.feedback button[value='yes']").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//p[contains(@class,'saved') and contains(., 'Thanks')]",
        ))
        .await
        .expect("the feedback is acknowledged");
    let user = app
        .ctx
        .store
        .find_user_by_email("ada@example.org")
        .await
        .unwrap()
        .unwrap();
    let conversation: uuid::Uuid = url.path().trim_start_matches("/chat/").parse().unwrap();
    let detail = app.ctx.store.messages_of(conversation).await.unwrap();
    let answer_id = detail.iter().find(|m| m.role == "assistant").unwrap().id;
    let feedback = app
        .ctx
        .store
        .feedback_of(user.id, &[answer_id])
        .await
        .unwrap();
    assert!(feedback[&answer_id].helpful);

    // The history lists the conversation; the admin page shows the audit log.
    client.goto(&format!("{base}/chat")).await.unwrap();
    wait_for(&client, ".history a[href^='/chat/']", 10).await;
    client.goto(&format!("{base}/admin")).await.unwrap();
    wait_for(&client, "table.audit", 10).await;
    shot(&client, "admin").await;
    client.close().await.unwrap();
}
