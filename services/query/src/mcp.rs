//! Lectern as a Model Context Protocol server, for assistants (desktop clients, IDEs,
//! agents): the tools `list_workspaces`, `search`, `ask` and `read_passage`, over stdio
//! (`lectern mcp`) or streamable HTTP (`/mcp` in `lectern serve`), with the official SDK
//! (`rmcp`) speaking the protocol.
//!
//! Every tool acts for a [`Caller`] and reaches the documents only through what the HTTP
//! APIs use: [`Caller::scope`] for the workspaces a search may look in, [`Asked`] for an
//! answer and its conversation, [`Answerer::search`] and
//! [`crate::retrieve::Retriever::passage_in_context`]. So a tool shows exactly what the
//! same key shows over `/v1/search` and `/v1/answer`, and a stranger's key finds nothing.
//!
//! Who the caller is: over stdio, fixed when the process starts (an API key, or a local
//! user named by the operator); over HTTP, each request's `Authorization: Bearer` key,
//! checked by [`lectern_auth::authenticate`] before the request reaches the protocol, and
//! handed to the tools in the request's extensions. HTTP runs stateless (no MCP
//! sessions): every request stands alone, so any replica can answer it, and no session
//! can outlive the key that opened it.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_body_util::{BodyExt, Full};
use lectern_api::query::{AnswerBody, AnswerResult, Passage};
use lectern_auth::Caller;
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_runtime::http::{ApiError, public_error};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::answer::Answerer;
use crate::api::Asked;

/// Where the streamable HTTP transport answers.
pub const PATH: &str = "/mcp";

/// Most passages `search` returns, and most chunks `read_passage` adds on each side.
const MAX_PASSAGES: usize = 20;
const MAX_NEIGHBOURS: u32 = 3;

const INSTRUCTIONS: &str = "Lectern answers from the documents in your workspaces, and every claim cites the passage it comes from. \
list_workspaces shows the workspaces you can read. search finds the passages that best match a question (document, page, score, text). \
ask gives an answer checked against its sources, with numbered citations; pass its conversation_id to ask a follow-up. \
read_passage reads a passage (the chunk_id of a search result or a citation) whole, with the text around it.";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchParams {
    /// What to look for: a question, or keywords.
    pub question: String,
    /// Workspaces to search, by name or id (see list_workspaces); all you can read when empty.
    #[serde(default)]
    pub workspaces: Vec<String>,
    /// How many passages to return, 1 to 20 (default 5).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskParams {
    /// The question, in a sentence.
    pub question: String,
    /// Workspaces to answer from, by name or id; all you can read when empty (a follow-up:
    /// those of its conversation).
    #[serde(default)]
    pub workspaces: Vec<String>,
    /// The conversation_id of an earlier answer, to ask a follow-up in that conversation.
    #[serde(default)]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadPassageParams {
    /// The chunk_id of a search result or of a citation.
    pub chunk_id: String,
    /// How many chunks of the document to add before and after it, 0 to 3 (default 1).
    #[serde(default)]
    pub neighbours: Option<u32>,
}

/// The MCP server: the tools, bound to the process's context and answering pipeline, for
/// a caller fixed at start (stdio) or taken from each request (HTTP).
#[derive(Clone)]
pub struct LecternMcp {
    ctx: Arc<Context>,
    answerer: Arc<Answerer>,
    caller: Option<Caller>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl LecternMcp {
    #[tool(
        description = "The workspaces you can read: id, name, your role, and whether it is your own.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_workspaces(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = match self.caller(&context) {
            Ok(caller) => self.workspaces_of(&caller).await,
            Err(e) => Err(e),
        };
        Ok(reply(outcome))
    }

    #[tool(
        description = "Search your documents: the passages that best match a question, best first, each with its document, page, score, text and chunk_id.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn search(
        &self,
        Parameters(params): Parameters<SearchParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = match self.caller(&context) {
            Ok(caller) => self.search_for(&caller, params).await,
            Err(e) => Err(e),
        };
        Ok(reply(outcome))
    }

    #[tool(
        description = "Ask a question: an answer written only from your documents and checked sentence by sentence against its sources, with numbered citations (document, page, quoted passage, chunk_id). When the documents do not hold the answer it says so (abstained) and lists where you may look.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn ask(
        &self,
        Parameters(params): Parameters<AskParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = match self.caller(&context) {
            Ok(caller) => self.ask_for(&caller, params).await,
            Err(e) => Err(e),
        };
        Ok(reply(outcome))
    }

    #[tool(
        description = "Read a passage whole, by the chunk_id of a search result or a citation, with the chunks just before and after it in its document.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn read_passage(
        &self,
        Parameters(params): Parameters<ReadPassageParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let outcome = match self.caller(&context) {
            Ok(caller) => self.read_for(&caller, params).await,
            Err(e) => Err(e),
        };
        Ok(reply(outcome))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for LecternMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lectern", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

impl LecternMcp {
    /// The tools acting for `caller`, or (`None`) for the caller of each HTTP request.
    pub fn new(ctx: Arc<Context>, answerer: Arc<Answerer>, caller: Option<Caller>) -> Self {
        Self {
            ctx,
            answerer,
            caller,
            tool_router: Self::tool_router(),
        }
    }

    /// Who calls: the process's caller (stdio), or the one [`endpoint`] authenticated
    /// and put in the HTTP request's extensions.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, Error> {
        if let Some(caller) = &self.caller {
            return Ok(caller.clone());
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| {
                Error::Unauthenticated(
                    "this server needs `Authorization: Bearer <API key>`; create a key with `lectern api-key create`".into(),
                )
            })
    }

    /// The ids of the workspaces named (names or ids), among those the caller can read;
    /// a name stands for the caller's own workspace where two share it, as everywhere.
    async fn workspace_ids(&self, caller: &Caller, names: &[String]) -> Result<Vec<Uuid>, Error> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            let ws = caller
                .workspace_named(&self.ctx.store, name)
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "no workspace named {name:?} among yours; list_workspaces shows them"
                    ))
                })?;
            ids.push(ws.id);
        }
        Ok(ids)
    }

    async fn workspaces_of(&self, caller: &Caller) -> Result<Value, Error> {
        let workspaces: Vec<_> = caller
            .workspaces(&self.ctx.store)
            .await?
            .into_iter()
            .map(|a| caller.workspace_out(a.workspace, a.role))
            .collect();
        Ok(json!({ "workspaces": workspaces }))
    }

    async fn search_for(&self, caller: &Caller, params: SearchParams) -> Result<Value, Error> {
        let limit = params.limit.unwrap_or(5);
        if !(1..=MAX_PASSAGES).contains(&limit) {
            return Err(Error::Invalid(format!(
                "limit must be between 1 and {MAX_PASSAGES}"
            )));
        }
        let ids = self.workspace_ids(caller, &params.workspaces).await?;
        let scope = caller.scope(&self.ctx.store, &ids).await?;
        let passages = self
            .answerer
            .search(&scope, &params.question, limit, None)
            .await?
            .passages;
        Ok(json!({ "passages": passages }))
    }

    async fn ask_for(&self, caller: &Caller, params: AskParams) -> Result<Value, Error> {
        let conversation_id = params
            .conversation_id
            .as_deref()
            .map(|id| parse_id(id, "conversation_id"))
            .transpose()?;
        let body = AnswerBody {
            question: params.question,
            workspaces: self.workspace_ids(caller, &params.workspaces).await?,
            conversation_id,
            ..AnswerBody::default()
        };
        let asked = Asked::prepare(&self.ctx, caller, &body).await?;
        // The receiver is kept to the end: dropping it would cancel the answer.
        let (tokens, _rx) = mpsc::unbounded_channel();
        let result = asked
            .answer(&self.ctx, &self.answerer, |_: &[Passage]| {}, tokens)
            .await?;
        Ok(answer_json(&result))
    }

    async fn read_for(&self, caller: &Caller, params: ReadPassageParams) -> Result<Value, Error> {
        let chunk_id = parse_id(&params.chunk_id, "chunk_id")?;
        let around = params.neighbours.unwrap_or(1).min(MAX_NEIGHBOURS);
        let scope = caller.scope(&self.ctx.store, &[]).await?;
        let passage = self
            .answerer
            .retriever
            .passage_in_context(&scope, chunk_id, around)
            .await?;
        serde_json::to_value(passage).map_err(|e| Error::internal("cannot write the passage", e))
    }
}

fn parse_id(id: &str, what: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(id.trim())
        .map_err(|_| Error::Invalid(format!("{what} {id:?} is not an id (a UUID)")))
}

/// The checked answer as a tool gives it: the answer with its citations (and, when it
/// abstains, where to look), without the timings and per-sentence scores.
fn answer_json(result: &AnswerResult) -> Value {
    let a = &result.answer;
    let unsupported: Vec<&str> = a
        .sentences
        .iter()
        .filter(|s| !s.supported)
        .map(|s| s.text.as_str())
        .collect();
    let mut out = json!({
        "answer": a.answer,
        "abstained": a.abstained,
        "extractive": a.extractive,
        "notice": a.notice,
        "citations": a.citations,
        "unsupported": unsupported,
        "conversation_id": result.conversation_id,
    });
    if a.abstained {
        out["passages"] = json!(a.passages);
    }
    out
}

/// A tool's outcome as MCP gives it: the value as structured content (and as its JSON
/// text), or Lectern's error as a tool error the assistant can read, under the one rule
/// of what an error tells ([`public_error`]: server errors logged, told without detail).
fn reply(outcome: Result<Value, Error>) -> CallToolResult {
    match outcome {
        Ok(value) => CallToolResult::structured(value),
        Err(e) => {
            let (_, body) = public_error(&e);
            let mut result = CallToolResult::structured_error(json!({
                "code": body.code,
                "message": body.message,
            }));
            result.content = vec![ContentBlock::text(body.message)];
            result
        }
    }
}

/// Serves the tools on standard input and output for `caller` until the client closes
/// them (`lectern mcp`). Nothing else may write to standard output meanwhile: logs go to
/// standard error.
pub async fn serve_stdio(
    ctx: Arc<Context>,
    answerer: Arc<Answerer>,
    caller: Caller,
) -> anyhow::Result<()> {
    let running = LecternMcp::new(ctx, answerer, Some(caller))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("the MCP client did not start a session: {e}"))?;
    running.waiting().await?;
    Ok(())
}

/// The streamable HTTP transport, stateless, answering JSON. Its `Host` check (against DNS
/// rebinding of servers that trust any local caller) is off: Lectern is reached under
/// whatever name it is deployed at, and every request must carry a key anyway.
pub type HttpService = StreamableHttpService<LecternMcp, NeverSessionManager>;

pub fn http_service(ctx: Arc<Context>, answerer: Arc<Answerer>) -> HttpService {
    let prototype = LecternMcp::new(ctx, answerer, None);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(prototype.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // One JSON-RPC message per request: a question and its arguments.
    cfg.service(
        web::resource(PATH)
            .app_data(web::PayloadConfig::new(1 << 20))
            .route(web::route().to(endpoint)),
    );
}

/// `/mcp`: the caller authenticated like every API call (401 with Lectern's error body
/// otherwise), then the request handed, as an `http` 1.x request carrying the caller, to
/// rmcp's transport, and its response passed back: an event stream as it comes, anything
/// else whole.
async fn endpoint(
    ctx: web::Data<Context>,
    mcp: web::Data<HttpService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = lectern_auth::authenticate(&ctx, &req).await?;
    let mut request = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers().iter() {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let mut request = request
        .body(Full::new(body))
        .map_err(|e| Error::Invalid(format!("the request cannot be read: {e}")))?;
    request.extensions_mut().insert(caller);
    let (parts, body) = mcp.handle(request).await.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in parts.headers.iter() {
        // The body's framing is actix's to set.
        if *name != http::header::CONTENT_LENGTH && *name != http::header::TRANSFER_ENCODING {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let events = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if events {
        return Ok(response.streaming(body.into_data_stream()));
    }
    // JSON, a plain-text refusal, or nothing (202): small, and sent with its length.
    let whole = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    Ok(response.body(whole))
}
