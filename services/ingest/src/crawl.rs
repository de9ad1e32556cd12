//! Web sources: a site crawled breadth-first from a start URL, within a URL prefix, so
//! that the workspace holds the pages (and linked PDFs) it reaches.
//!
//! A crawl reads robots.txt (and honours it for the agent `Lectern`), queues the start URL
//! and the site map's URLs (sitemap.xml at the site root, or those robots.txt lists), and
//! follows `<a href>` links (fragments stripped, resolved against the page or its
//! `<base>`, normalised by the URL parser) that start with the prefix, up to a depth and a
//! number of pages. Each page is asked for again with the `ETag` and `Last-Modified` its
//! server sent last time: a `304` is unchanged (its links are read from the stored
//! original), and so is a body whose SHA-256 is the document's. HTML and PDF responses
//! become documents (key: the URL) through the same pipeline as folder files; other types
//! are left alone.
//!
//! Deletion is careful: a page answered `404` or `410` is removed; a page no longer reached
//! is removed only when the crawl met no transient failure (a network error, a timeout, a
//! `5xx`, a `429`), since a hub page that failed hides the pages below it; and a crawl that
//! fetched nothing deletes nothing and fails with the reason.
//!
//! Safety: only `http` and `https`; every request's address is checked, the name resolved
//! here (a reqwest resolver) and the connection made to the checked address itself, so a
//! DNS answer that changes between check and connect (rebinding) cannot reach a private
//! address; redirects are followed by hand (at most [`MAX_REDIRECTS`]), each hop checked
//! again; no proxy from the environment. Private, loopback, link-local, shared, multicast
//! and documentation addresses (and IPv4 ones inside IPv6) are refused unless
//! `ingest.crawl_allow_private` is set. Bodies are read up to `ingest.max_file_mb`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lectern_api::ingest::{SyncResult, WebSettings};
use lectern_core::{Error, Result};
use lectern_store::entity::document;
use lectern_store::{SourceFile, status};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::pipeline::{Ingestor, JobError, SourceEntry, Stage, Submitted, hex, over_the_limit};
use crate::source::{CheckedSettings, SyncRun};

/// The token Lectern answers to in robots.txt.
pub const ROBOTS_AGENT: &str = "Lectern";
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
pub const DEFAULT_DEPTH: u32 = 5;
pub const DEFAULT_PAGES: u32 = 500;
const MAX_DEPTH: u32 = 50;
const MAX_PAGES: u32 = 100_000;
/// robots.txt and site maps read at most (Google reads 500 KiB of robots.txt).
const MAX_ROBOTS_BYTES: u64 = 512 * 1024;
/// Site maps read per crawl.
const MAX_SITEMAPS: usize = 10;
/// Pages larger than this are stored and indexed, but their links are not followed (a
/// document tree of a page that large would take gigabytes).
const MAX_LINK_PAGE_BYTES: usize = 8 << 20;

/// A small file of the site (robots.txt, a site map).
enum Small {
    /// The server has none (a 4xx).
    Missing,
    /// Larger than it may be.
    TooLarge,
    Text(String),
}

/// The longest `Crawl-delay` honoured: a site asking for more is still crawled, a page a
/// minute.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Links to these are never documents: not even asked for.
const SKIPPED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "mjs", "map", "zip", "gz",
    "tgz", "bz2", "xz", "tar", "7z", "exe", "dmg", "iso", "mp3", "mp4", "webm", "woff", "woff2",
    "ttf", "eot",
];

/// The `User-Agent` of every request: `Lectern/<version>`, with the deployment's public
/// URL when it has one, so that a site's operator can tell who crawls it.
pub fn user_agent(public_url: Option<&str>) -> String {
    match public_url {
        Some(url) if !url.trim().is_empty() => {
            format!("Lectern/{} (+{})", env!("CARGO_PKG_VERSION"), url.trim())
        }
        _ => format!("Lectern/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Whether a crawl may connect to `ip` when private addresses are not allowed: false for
/// unspecified, loopback, private (10/8, 172.16/12, 192.168/16), shared (100.64/10),
/// link-local (169.254/16, fe80::/10), unique-local (fc00::/7), multicast, broadcast,
/// reserved and documentation ranges, and for IPv6 addresses that carry an IPv4 one
/// (mapped, compatible, 6to4, NAT64) that is not global itself.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() || v6.is_loopback() {
                return false;
            }
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global_v4(v4);
            }
            // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
            if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
                return is_global_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            // 6to4 (2002::/16) carries the IPv4 address in its next 32 bits.
            if s[0] == 0x2002 {
                return is_global_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            !((s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local, deprecated
                || (s[0] & 0xff00) == 0xff00 // multicast
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only 100::/64
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Refuses what a crawl never fetches: a scheme other than `http(s)`, a URL without a
/// host, and (unless `allow_private`) a host written as a non-global IP address. Names
/// are checked when they are resolved ([`GuardedResolver`]).
pub fn check_url(url: &Url, allow_private: bool) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!(
            "{url}: a web source fetches only http and https URLs"
        )));
    }
    let Some(host) = url.host_str() else {
        return Err(Error::Invalid(format!("{url}: the URL has no host")));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>()
        && !allow_private
        && !is_global(ip)
    {
        return Err(private_refused(host));
    }
    Ok(())
}

fn private_refused(host: &str) -> Error {
    Error::Forbidden(format!(
        "{host} is a private, loopback or otherwise non-public address, which web sources \
         may not reach; an administrator allows them with ingest.crawl_allow_private = true"
    ))
}

/// Resolves names for the crawler's client and keeps only the addresses a crawl may
/// reach: the client connects to what this returns, so the address checked is the address
/// used.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        let resolving = async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_global(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(private_refused(&host));
                return Err(refused);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addrs)
        };
        Box::pin(resolving)
    }
}

/// The settings of a web source, checked, with the defaults filled in.
#[derive(Debug, Clone)]
pub struct Site {
    pub start: Url,
    /// Every fetched URL starts with this.
    pub prefix: String,
    pub depth: u32,
    pub pages: u32,
}

impl Site {
    pub fn from_settings(settings: &serde_json::Value, allow_private: bool) -> Result<Self> {
        let s: WebSettings = serde_json::from_value(settings.clone()).map_err(|e| {
            Error::Invalid(format!(
                "a web source's settings are {{\"url\": \"https://example.org/docs/\", \"prefix\"?, \"depth\"?, \"pages\"?}}: {e}"
            ))
        })?;
        let start = normalise(
            Url::parse(s.url.trim())
                .map_err(|e| Error::Invalid(format!("the start URL {:?}: {e}", s.url)))?,
        )
        .ok_or_else(|| Error::Invalid(format!("{}: not an http(s) URL", s.url)))?;
        check_url(&start, allow_private)?;
        let prefix = match s.prefix.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => normalise(
                Url::parse(p).map_err(|e| Error::Invalid(format!("the prefix {p:?}: {e}")))?,
            )
            .ok_or_else(|| Error::Invalid(format!("{p}: not an http(s) URL")))?,
            _ => start
                .join("./")
                .map_err(|e| Error::Invalid(format!("{start}: {e}")))?,
        };
        let prefix = prefix.to_string();
        if !start.as_str().starts_with(&prefix) {
            return Err(Error::Invalid(format!(
                "the start URL {start} does not lie under the prefix {prefix}"
            )));
        }
        let depth = s.depth.unwrap_or(DEFAULT_DEPTH);
        let pages = s.pages.unwrap_or(DEFAULT_PAGES);
        if depth > MAX_DEPTH || !(1..=MAX_PAGES).contains(&pages) {
            return Err(Error::Invalid(format!(
                "a web source's depth is at most {MAX_DEPTH} and its pages 1 to {MAX_PAGES}"
            )));
        }
        Ok(Self {
            start,
            prefix,
            depth,
            pages,
        })
    }

    fn settings(&self) -> WebSettings {
        WebSettings {
            url: self.start.to_string(),
            prefix: Some(self.prefix.clone()),
            depth: Some(self.depth),
            pages: Some(self.pages),
        }
    }

    fn takes(&self, url: &Url) -> bool {
        url.as_str().starts_with(&self.prefix) && !skipped_extension(url)
    }
}

fn skipped_extension(url: &Url) -> bool {
    url.path()
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .is_some_and(|(_, ext)| SKIPPED_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// A URL as a crawl keys it: `http(s)` only, without its fragment (the parser already
/// lower-cased the host, dropped a default port and resolved `.` and `..`).
pub fn normalise(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// The `<a href>` links of an HTML page, resolved against the page's URL (or its
/// `<base href>`) and normalised, in document order.
pub fn links(page: &Url, html: &str) -> Vec<Url> {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(html);
    let base_sel = Selector::parse("base[href]").expect("static selector");
    let a_sel = Selector::parse("a[href]").expect("static selector");
    let base = doc
        .select(&base_sel)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|h| page.join(h.trim()).ok())
        .unwrap_or_else(|| page.clone());
    doc.select(&a_sel)
        .filter_map(|a| a.value().attr("href"))
        .filter_map(|h| base.join(h.trim()).ok())
        .filter_map(normalise)
        .collect()
}

/// The `<loc>` URLs of a site map (or a site map index: its entries are then site maps,
/// fetched as pages and left alone for their type).
fn sitemap_locs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<loc>") {
        rest = &rest[start + 5..];
        let Some(end) = rest.find("</loc>") else {
            break;
        };
        let loc = rest[..end].trim().replace("&amp;", "&");
        out.push(loc);
        rest = &rest[end..];
    }
    out
}

/// A document's bare file name for a URL: its last path segment, `index` for a directory,
/// with `.html` or `.pdf` added when the type needs it for detection.
fn file_name_for(url: &Url, kind: Kind) -> String {
    let last = url
        .path()
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("index");
    let mut name: String = last
        .chars()
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    if name == "." || name == ".." {
        name = "index".into();
    }
    let lower = name.to_ascii_lowercase();
    match kind {
        Kind::Html if !(lower.ends_with(".html") || lower.ends_with(".htm")) => {
            name.push_str(".html")
        }
        Kind::Pdf if !lower.ends_with(".pdf") => name.push_str(".pdf"),
        _ => {}
    }
    name
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Html,
    Pdf,
}

/// What one request came to.
enum Fetched {
    Page {
        url: Url,
        kind: Kind,
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    NotModified {
        url: Url,
    },
    /// `404` or `410`: the page is gone.
    Gone,
    /// The page is there but not taken (another type, a redirect out of the prefix,
    /// robots.txt); a note says why.
    Skipped(String),
    /// Larger than `ingest.max_file_mb` (its size, when known).
    TooLarge {
        url: Url,
        size: u64,
    },
    /// A transient failure (network, timeout, `5xx`, `429`) or a refusal: kept as it was.
    Failed(String),
}

/// A crawl's page fetches under way, in the order they were queued; those not taken yet
/// are stopped when the crawl ends early (an error, its lease lost).
struct Fetches<T>(VecDeque<tokio::task::JoinHandle<T>>);

impl<T> Drop for Fetches<T> {
    fn drop(&mut self) {
        for fetch in &self.0 {
            fetch.abort();
        }
    }
}

/// The HTTP side of one crawl.
struct Fetcher {
    client: reqwest::Client,
    allow_private: bool,
    max_bytes: u64,
}

impl Fetcher {
    fn new(user_agent: &str, allow_private: bool, max_bytes: u64) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()
            .map_err(|e| Error::internal("cannot build the crawler's HTTP client", e))?;
        Ok(Self {
            client,
            allow_private,
            max_bytes,
        })
    }

    /// GETs `url`, following redirects by hand (each hop checked, and kept within
    /// `within` when given); the final response and its URL.
    async fn get(
        &self,
        url: &Url,
        validators: Option<(&Option<String>, &Option<String>)>,
        within: Option<&Site>,
    ) -> std::result::Result<(Url, reqwest::Response), String> {
        let mut at = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            check_url(&at, self.allow_private).map_err(|e| e.to_string())?;
            let mut request = self.client.get(at.clone());
            if let Some((etag, modified)) = validators {
                if let Some(etag) = etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag.as_str());
                }
                if let Some(modified) = modified {
                    request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified.as_str());
                }
            }
            let response = request.send().await.map_err(|e| describe(&at, &e))?;
            if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED
            {
                return Ok((at, response));
            }
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| at.join(l).ok())
                .and_then(normalise)
                .ok_or_else(|| format!("{at}: a redirect without a usable Location"))?;
            if let Some(site) = within
                && !site.takes(&next)
            {
                return Err(format!("{at}: redirects to {next}, outside the prefix"));
            }
            at = next;
        }
        Err(format!("{url}: more than {MAX_REDIRECTS} redirects"))
    }

    /// Reads a body up to `limit` bytes; `Err(Some(size))` when larger.
    async fn body(
        mut response: reqwest::Response,
        limit: u64,
    ) -> std::result::Result<Vec<u8>, std::result::Result<u64, String>> {
        if let Some(len) = response.content_length()
            && len > limit
        {
            return Err(Ok(len));
        }
        let mut body = Vec::new();
        while let Some(piece) = response.chunk().await.map_err(|e| Err(e.to_string()))? {
            if (body.len() + piece.len()) as u64 > limit {
                return Err(Ok((body.len() + piece.len()) as u64));
            }
            body.extend_from_slice(&piece);
        }
        Ok(body)
    }

    /// A small text resource (robots.txt, a site map): `Ok(None)` when the server has
    /// none (a `4xx`), `Err` when it failed (a `5xx`, the network).
    async fn small(&self, url: &Url) -> std::result::Result<Small, String> {
        let (_, response) = self.get(url, None, None).await?;
        let status = response.status();
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            return Ok(Small::Missing);
        }
        if !status.is_success() {
            return Err(format!("{url}: answered {status}"));
        }
        match Self::body(response, MAX_ROBOTS_BYTES).await {
            Ok(body) => Ok(Small::Text(String::from_utf8_lossy(&body).into_owned())),
            Err(Ok(_)) => Ok(Small::TooLarge),
            Err(Err(e)) => Err(format!("{url}: {e}")),
        }
    }

    async fn page(&self, url: &Url, site: &Site, existing: Option<&document::Model>) -> Fetched {
        let validators = existing
            .filter(|d| d.status != status::FAILED)
            .map(|d| (&d.source_etag, &d.source_last_modified));
        let (at, response) = match self.get(url, validators, Some(site)).await {
            Ok(got) => got,
            Err(e) if e.contains("outside the prefix") => return Fetched::Skipped(e),
            Err(e) => return Fetched::Failed(e),
        };
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Fetched::NotModified { url: at };
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Fetched::Gone;
        }
        if !status.is_success() {
            return Fetched::Failed(format!("{at}: answered {status}"));
        }
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let media = header(reqwest::header::CONTENT_TYPE)
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let kind = match media.as_str() {
            "text/html" | "application/xhtml+xml" => Kind::Html,
            "application/pdf" => Kind::Pdf,
            other => return Fetched::Skipped(format!("{at}: {other:?} is neither HTML nor PDF")),
        };
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        match Self::body(response, self.max_bytes).await {
            Ok(body) => Fetched::Page {
                url: at,
                kind,
                body,
                etag,
                last_modified,
            },
            Err(Ok(size)) => Fetched::TooLarge { url: at, size },
            Err(Err(e)) => Fetched::Failed(format!("{at}: {e}")),
        }
    }
}

/// A request error, said plainly (the resolver's refusal comes through its source chain).
fn describe(url: &Url, e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    format!("{url}: {text}")
}

impl Ingestor {
    /// A web source's settings checked and completed (the prefix, depth and page limit
    /// filled in), and its start URL's host checked: a host that is, or resolves only to,
    /// a private address is refused unless `ingest.crawl_allow_private` is set. For
    /// adding a source and for changing one alike.
    pub(crate) async fn checked_web_settings(
        &self,
        settings: &serde_json::Value,
    ) -> Result<CheckedSettings> {
        let site = Site::from_settings(settings, self.crawl_allow_private)?;
        if !self.crawl_allow_private
            && let Some(host) = site.start.host_str()
            && host.parse::<IpAddr>().is_err()
            && !host.starts_with('[')
        {
            let port = site.start.port_or_known_default().unwrap_or(80);
            if let Ok(found) = tokio::net::lookup_host((host, port)).await {
                let found: Vec<SocketAddr> = found.collect();
                if !found.is_empty() && found.iter().all(|a| !is_global(a.ip())) {
                    return Err(private_refused(host));
                }
            }
        }
        let settings = serde_json::to_value(site.settings())
            .map_err(|e| Error::internal("cannot store the source's settings", e))?;
        Ok(CheckedSettings {
            settings,
            default_name: site.start.host_str().unwrap_or("web").to_owned(),
        })
    }

    /// One crawl of a claimed web source (see the module doc). `Ok(None)`: a simulated
    /// crash.
    pub(crate) async fn crawl(
        &self,
        mut run: SyncRun<'_>,
    ) -> std::result::Result<Option<SyncResult>, JobError> {
        let source = run.source;
        let site = Site::from_settings(&source.settings, self.crawl_allow_private)
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        let fetcher = Fetcher::new(
            &self.user_agent,
            self.crawl_allow_private,
            self.max_file_bytes(),
        )?;
        let store = self.store();
        let by_key: HashMap<String, document::Model> = store
            .source_documents(source.id)
            .await?
            .into_iter()
            .filter_map(|d| Some((d.source_key.clone()?, d)))
            .collect();

        // robots.txt: none (a 4xx) allows everything; a server that fails to answer it
        // may not want a crawl now, so nothing is crawled (Google's reading).
        let origin = site
            .start
            .join("/")
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        let robots_url = origin.join("/robots.txt").expect("a fixed path");
        let robot = match fetcher.small(&robots_url).await {
            Ok(Small::Text(txt)) => texting_robots::Robot::new(ROBOTS_AGENT, txt.as_bytes()).ok(),
            Ok(Small::Missing | Small::TooLarge) => None,
            Err(e) => {
                return Err(JobError::Permanent(format!(
                    "robots.txt could not be read, so nothing was crawled (nor deleted): {e}"
                )));
            }
        };
        let allowed = |url: &Url| robot.as_ref().is_none_or(|r| r.allowed(url.as_str()));

        let mut queue: VecDeque<(Url, u32)> = VecDeque::new();
        let mut queued: HashSet<String> = HashSet::new();
        // Links kept to visit, bounded: a page of a million links cannot fill memory.
        let max_queued = (site.pages as usize).saturating_mul(4).max(1_000);
        queued.insert(site.start.to_string());
        queue.push_back((site.start.clone(), 0));
        let sitemaps: Vec<String> = match &robot {
            Some(r) if !r.sitemaps.is_empty() => r.sitemaps.clone(),
            _ => vec![
                origin
                    .join("/sitemap.xml")
                    .expect("a fixed path")
                    .to_string(),
            ],
        };
        // A page only a site map lists is known only through it: a site map that could
        // not be read whole makes the crawl incomplete, so that nothing is deleted for it.
        let mut troubled = false;
        // The crawl stopped before it saw the whole site (its page limit, or links left
        // out to bound its memory): pages not seen are kept.
        let mut truncated = false;
        for map in sitemaps.into_iter().take(MAX_SITEMAPS) {
            let Some(map) = Url::parse(&map).ok().and_then(normalise) else {
                continue;
            };
            run.beat(false).await?;
            match fetcher.small(&map).await {
                Ok(Small::Text(xml)) => {
                    for loc in sitemap_locs(&xml) {
                        if let Some(url) = Url::parse(&loc).ok().and_then(normalise)
                            && site.takes(&url)
                            && !queued.contains(url.as_str())
                        {
                            if queued.len() >= max_queued {
                                truncated = true;
                                break;
                            }
                            queued.insert(url.to_string());
                            queue.push_back((url, 0));
                        }
                    }
                }
                Ok(Small::Missing) => {}
                Ok(Small::TooLarge) | Err(_) => troubled = true,
            }
        }

        let mut seen: HashSet<String> = HashSet::new();
        let mut gone: HashSet<String> = HashSet::new();
        // The final addresses fetched in this crawl: a page reached again (through a
        // redirect, or under two links) is taken once.
        let mut taken: HashSet<String> = HashSet::new();
        let mut fetched_ok = 0u64;
        let mut first_failure: Option<String> = None;
        let mut requests = 0u32;
        // Pages are fetched a few at once, or one at a time `Crawl-delay` apart when
        // robots.txt asks for it, and taken in the order they were queued (breadth
        // first, as if fetched one by one).
        let delay = robot
            .as_ref()
            .and_then(|r| r.delay)
            .filter(|d| d.is_finite() && *d > 0.0)
            // Clamped before it becomes a duration: robots.txt may say 1e20.
            .map(|d| Duration::from_secs_f32(d.min(MAX_CRAWL_DELAY.as_secs_f32())));
        let at_once = if delay.is_some() {
            1
        } else {
            self.crawl_concurrency.max(1)
        };
        let mut next_request = tokio::time::Instant::now();
        // Fetches run as tasks of their own, so they go on while a page already fetched
        // is stored and its links read.
        let fetcher = Arc::new(fetcher);
        let shared_site = Arc::new(site.clone());
        let mut in_flight = Fetches(VecDeque::new());
        let mut at_limit = false;
        loop {
            while in_flight.0.len() < at_once && !at_limit {
                let Some((url, depth)) = queue.pop_front() else {
                    break;
                };
                if requests >= site.pages {
                    truncated = true;
                    at_limit = true;
                    break;
                }
                if !allowed(&url) {
                    run.skip(format!("{url}: disallowed by robots.txt"));
                    continue;
                }
                requests += 1;
                let start = next_request;
                if let Some(delay) = delay {
                    next_request = next_request.max(tokio::time::Instant::now()) + delay;
                }
                let known = by_key.get(url.as_str()).cloned();
                let (fetcher, site) = (fetcher.clone(), shared_site.clone());
                in_flight.0.push_back(tokio::spawn(async move {
                    tokio::time::sleep_until(start).await;
                    let fetched = fetcher.page(&url, &site, known.as_ref()).await;
                    (url, depth, known, fetched)
                }));
            }
            let Some(next) = in_flight.0.front_mut() else {
                break;
            };
            let joined = next.await;
            in_flight.0.pop_front();
            let (url, depth, known, fetched) =
                joined.map_err(|e| Error::internal("a page's fetch stopped", e))?;
            let existing = known.as_ref();
            let key = url.to_string();
            run.beat(false).await?;
            let mut body_links: Option<(Url, String)> = None;
            match fetched {
                Fetched::NotModified { url: at } => {
                    fetched_ok += 1;
                    seen.insert(key.clone());
                    seen.insert(at.to_string());
                    if !taken.insert(at.to_string()) {
                        continue;
                    }
                    run.result.unchanged += 1;
                    // Its links, from the stored original.
                    if let Some(doc) = existing
                        && depth < site.depth
                        && doc.media_type == "text/html"
                        && let Ok(text) = self.read_original_text(doc).await
                    {
                        body_links = Some((at, text));
                    }
                }
                Fetched::Page {
                    url: at,
                    kind,
                    body,
                    etag,
                    last_modified,
                } => {
                    fetched_ok += 1;
                    let key = at.to_string();
                    seen.insert(key.clone());
                    seen.insert(url.to_string());
                    if !taken.insert(key.clone()) {
                        continue;
                    }
                    if kind == Kind::Html && depth < site.depth {
                        if body.len() <= MAX_LINK_PAGE_BYTES {
                            body_links =
                                Some((at.clone(), String::from_utf8_lossy(&body).into_owned()));
                        } else {
                            // Its links are not followed: what only it links to is kept.
                            truncated = true;
                        }
                    }
                    let existing = by_key.get(&key);
                    let sha = hex(&Sha256::digest(&body));
                    match existing {
                        Some(doc) if doc.sha256 == sha => {
                            store
                                .mark_web_page_seen(doc.id, etag, last_modified)
                                .await?;
                            run.result.unchanged += 1;
                        }
                        _ => {
                            run.beat(true).await?;
                            self.take_page(
                                &mut run,
                                &at,
                                kind,
                                body,
                                existing,
                                etag,
                                last_modified,
                            )
                            .await?;
                            if self.crash_point(Stage::SourceFile) {
                                return Ok(None);
                            }
                        }
                    }
                }
                Fetched::Gone => {
                    gone.insert(key);
                }
                Fetched::Skipped(note) => run.skip(note),
                Fetched::TooLarge { url: at, size } => {
                    fetched_ok += 1;
                    let key = at.to_string();
                    seen.insert(key.clone());
                    let existing = by_key.get(&key);
                    if existing
                        .is_some_and(|d| d.status == status::FAILED && d.size_bytes == size as i64)
                    {
                        run.result.unchanged += 1;
                    } else {
                        run.beat(true).await?;
                        let name = file_name_for(&at, Kind::Html);
                        let entry = SourceEntry {
                            workspace: source.workspace_id,
                            file: web_file(source.id, &key, None, None),
                            file_name: &name,
                            existing,
                        };
                        let reason = over_the_limit(size, self.max_file_bytes());
                        match self
                            .refuse_source_file(&entry, size, String::new(), &reason)
                            .await
                        {
                            Ok(_) => run.result.failed += 1,
                            Err(e) => run.file_failed(&key, e)?,
                        }
                    }
                }
                Fetched::Failed(reason) => {
                    troubled = true;
                    if existing.is_some() {
                        seen.insert(key);
                    }
                    first_failure.get_or_insert_with(|| reason.clone());
                    run.skip(reason);
                }
            }
            if let Some((at, html)) = body_links {
                for link in links(&at, &html) {
                    if site.takes(&link) && !queued.contains(link.as_str()) {
                        if queued.len() >= max_queued {
                            truncated = true;
                            break;
                        }
                        queued.insert(link.to_string());
                        queue.push_back((link, depth + 1));
                    }
                }
            }
        }

        // A crawl that reached nothing says why, and deletes nothing.
        if fetched_ok == 0 {
            return Err(JobError::Permanent(format!(
                "the crawl fetched no page, so nothing was deleted{}",
                first_failure.map(|f| format!(": {f}")).unwrap_or_default()
            )));
        }
        let doomed: Vec<document::Model> = by_key
            .into_iter()
            .filter(|(key, _)| {
                !seen.contains(key) && (gone.contains(key) || !(troubled || truncated))
            })
            .map(|(_, doc)| doc)
            .collect();
        if !self.delete_gone(&mut run, doomed).await? {
            return Ok(None);
        }
        Ok(Some(run.result))
    }

    /// A new or changed page into the pipeline, its validators recorded.
    #[allow(clippy::too_many_arguments)]
    async fn take_page(
        &self,
        run: &mut SyncRun<'_>,
        url: &Url,
        kind: Kind,
        body: Vec<u8>,
        existing: Option<&document::Model>,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> std::result::Result<(), JobError> {
        let key = url.to_string();
        let name = file_name_for(url, kind);
        let entry = SourceEntry {
            workspace: run.source.workspace_id,
            file: web_file(run.source.id, &key, etag.clone(), last_modified.clone()),
            file_name: &name,
            existing,
        };
        let submitted = async {
            let mut receiving = self.receive().await?;
            receiving.write(&body).await?;
            let incoming = receiving.finish().await?;
            self.submit_source_file(&entry, incoming).await
        }
        .await;
        match submitted {
            Ok(Submitted::Queued { .. }) => run.result.added += 1,
            Ok(Submitted::NewVersion { document }) => {
                self.store()
                    .mark_web_page_seen(document.id, etag, last_modified)
                    .await?;
                run.result.changed += 1;
            }
            Ok(Submitted::Rejected { .. }) => run.result.failed += 1,
            Ok(Submitted::Unchanged { .. }) => run.result.unchanged += 1,
            Err(e) => run.file_failed(&key, e)?,
        }
        Ok(())
    }

    /// The current original of a stored page, as text (bounded by the size limit).
    async fn read_original_text(&self, doc: &document::Model) -> Result<String> {
        use tokio::io::AsyncReadExt;
        let (file, size) = self.open_original(doc).await?;
        let mut bytes = Vec::with_capacity(size.min(self.max_file_bytes()) as usize);
        file.take(self.max_file_bytes())
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::internal("cannot read a stored page", e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn web_file(
    source_id: uuid::Uuid,
    key: &str,
    etag: Option<String>,
    last_modified: Option<String>,
) -> SourceFile {
    SourceFile {
        source_id,
        key: key.to_owned(),
        mtime_ns: None,
        etag,
        last_modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_global() {
        for private in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.7",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:c0a8:0101::1",
            "2001:db8::1",
        ] {
            assert!(!is_global(ip(private)), "{private} must be refused");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert!(is_global(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn only_http_urls_to_public_hosts_pass_the_check() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(check_url(&url("https://example.org/docs/"), false).is_ok());
        for refused in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://10.0.0.5/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let err = check_url(&url(refused), false).unwrap_err();
            assert!(matches!(err, Error::Forbidden(_)), "{refused}: {err}");
        }
        assert!(check_url(&url("http://127.0.0.1:8080/"), true).is_ok());
        for scheme in [
            "file:///etc/passwd",
            "ftp://example.org/",
            "gopher://example.org/",
        ] {
            assert!(check_url(&url(scheme), true).is_err(), "{scheme}");
        }
    }

    #[test]
    fn links_are_resolved_stripped_of_fragments_and_normalised() {
        let page = Url::parse("https://Example.org:443/docs/tutorial/intro.html").unwrap();
        let html = r##"<html><body>
            <a href="controlflow.html#for-statements">for</a>
            <a href="../library/index.html">library</a>
            <a href="#top">top</a>
            <a href="https://other.example/x">other</a>
            <a href="mailto:a@example.org">mail</a>
            <a href="./sub/./a.html">sub</a>
        </body></html>"##;
        let got: Vec<String> = links(&page, html).iter().map(Url::to_string).collect();
        assert_eq!(
            got,
            [
                "https://example.org/docs/tutorial/controlflow.html",
                "https://example.org/docs/library/index.html",
                "https://example.org/docs/tutorial/intro.html",
                "https://other.example/x",
                "https://example.org/docs/tutorial/sub/a.html",
            ]
        );
    }

    #[test]
    fn the_prefix_defaults_to_the_start_urls_directory() {
        let site = Site::from_settings(
            &serde_json::json!({"url": "https://example.org/docs/tutorial/index.html"}),
            false,
        )
        .unwrap();
        assert_eq!(site.prefix, "https://example.org/docs/tutorial/");
        assert_eq!((site.depth, site.pages), (DEFAULT_DEPTH, DEFAULT_PAGES));
        assert!(site.takes(&Url::parse("https://example.org/docs/tutorial/a.html").unwrap()));
        assert!(!site.takes(&Url::parse("https://example.org/docs/library/a.html").unwrap()));
        assert!(!site.takes(&Url::parse("https://example.org/docs/tutorial/logo.png").unwrap()));
        let err = Site::from_settings(
            &serde_json::json!({"url": "https://example.org/a/", "prefix": "https://example.org/b/"}),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("prefix"), "{err}");
    }

    #[test]
    fn site_maps_and_file_names() {
        let xml = "<urlset><url><loc> https://e.org/a?x=1&amp;y=2 </loc></url><url><loc>https://e.org/b</loc></url></urlset>";
        assert_eq!(
            sitemap_locs(xml),
            ["https://e.org/a?x=1&y=2", "https://e.org/b"]
        );
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            file_name_for(&url("https://e.org/docs/"), Kind::Html),
            "index.html"
        );
        assert_eq!(
            file_name_for(&url("https://e.org/docs/a.html"), Kind::Html),
            "a.html"
        );
        assert_eq!(
            file_name_for(&url("https://e.org/docs/page"), Kind::Html),
            "page.html"
        );
        assert_eq!(
            file_name_for(&url("https://e.org/get?id=3"), Kind::Pdf),
            "get.pdf"
        );
    }

    #[test]
    fn the_user_agent_names_lectern_and_the_deployment() {
        assert!(user_agent(None).starts_with("Lectern/"));
        assert!(
            user_agent(Some("https://lectern.example.org"))
                .ends_with("(+https://lectern.example.org)")
        );
    }
}
