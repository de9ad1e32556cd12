//! The web app's client of the ingest and query services: every call carries the service
//! token and the user it acts for, so ingest and query check that user's role exactly as
//! for an API key. In the distributed shape the URLs are the other services'; embedded,
//! they are this process's own address (the same code, over loopback).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::Error;
use lectern_runtime::Context;
use lectern_runtime::auth::ACT_AS_HEADER;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

// The ingest service's own API types: one contract, one definition.
pub use lectern_ingest::api::{DocumentList, DocumentOut, WorkspaceList, WorkspaceOut};

/// Which service a call goes to.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Ingest,
    Query,
}

#[derive(Clone)]
pub struct Backend {
    ctx: Arc<Context>,
    client: reqwest::Client,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationOut {
    pub id: Uuid,
    pub title: String,
    pub workspaces: Vec<Uuid>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationList {
    pub conversations: Vec<ConversationOut>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageOut {
    pub id: Uuid,
    pub role: String,
    pub content: String,
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationOut,
    pub messages: Vec<MessageOut>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
}

/// The original of a document, as ingest serves it.
pub struct Original {
    pub bytes: Vec<u8>,
    pub media_type: String,
}

impl Backend {
    pub fn new(ctx: Arc<Context>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { ctx, client })
    }

    fn base(&self, service: Service) -> Result<String, Error> {
        let configured = match service {
            Service::Ingest => &self.ctx.settings.server.ingest_url,
            Service::Query => &self.ctx.settings.server.query_url,
        };
        configured
            .clone()
            .or_else(|| self.ctx.local_url.get().cloned())
            .map(|u| u.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                Error::unavailable(
                    "the web app does not know where the services are",
                    std::io::Error::other("no local address yet"),
                )
            })
    }

    /// A request to `service` at `path`, on behalf of `user`.
    pub fn request(
        &self,
        service: Service,
        method: Method,
        path: &str,
        user: Uuid,
    ) -> Result<RequestBuilder, Error> {
        Ok(self
            .client
            .request(method, format!("{}{path}", self.base(service)?))
            .bearer_auth(&self.ctx.service_token)
            .header(ACT_AS_HEADER, user.to_string()))
    }

    /// Sends, and turns an error answer back into the error it was.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let response = request.send().await.map_err(|e| {
            Error::unavailable("the document service did not answer; try again shortly", e)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = response
            .json::<ErrorBody>()
            .await
            .map(|b| b.message)
            .unwrap_or_else(|_| format!("the service answered {status}"));
        Err(match status {
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::Invalid(message),
            StatusCode::NOT_FOUND => Error::NotFound(message),
            StatusCode::CONFLICT => Error::Conflict(message),
            StatusCode::UNAUTHORIZED => Error::Unauthenticated(message),
            StatusCode::FORBIDDEN => Error::Forbidden(message),
            StatusCode::SERVICE_UNAVAILABLE => {
                Error::unavailable(message, std::io::Error::other("503"))
            }
            _ => Error::internal_msg(message),
        })
    }

    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Error> {
        self.send(request)
            .await?
            .json()
            .await
            .map_err(|e| Error::internal("the service's answer was not understood", e))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        user: Uuid,
    ) -> Result<T, Error> {
        self.json(self.request(service, Method::GET, path, user)?)
            .await
    }

    pub async fn workspaces(&self, user: Uuid) -> Result<Vec<WorkspaceOut>, Error> {
        Ok(self
            .get::<WorkspaceList>(Service::Ingest, "/v1/workspaces", user)
            .await?
            .workspaces)
    }

    pub async fn create_workspace(&self, user: Uuid, name: &str) -> Result<WorkspaceOut, Error> {
        let request = self
            .request(Service::Ingest, Method::POST, "/v1/workspaces", user)?
            .json(&serde_json::json!({ "name": name }));
        self.json(request).await
    }

    pub async fn documents(&self, user: Uuid, ws: Uuid) -> Result<Vec<DocumentOut>, Error> {
        Ok(self
            .get::<DocumentList>(
                Service::Ingest,
                &format!("/v1/workspaces/{ws}/documents"),
                user,
            )
            .await?
            .documents)
    }

    pub async fn document(&self, user: Uuid, ws: Uuid, doc: Uuid) -> Result<DocumentOut, Error> {
        self.get(
            Service::Ingest,
            &format!("/v1/workspaces/{ws}/documents/{doc}"),
            user,
        )
        .await
    }

    pub async fn delete_document(&self, user: Uuid, ws: Uuid, doc: Uuid) -> Result<(), Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}");
        self.send(self.request(Service::Ingest, Method::DELETE, &path, user)?)
            .await?;
        Ok(())
    }

    pub async fn reindex_document(&self, user: Uuid, ws: Uuid, doc: Uuid) -> Result<(), Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}/reindex");
        self.send(self.request(Service::Ingest, Method::POST, &path, user)?)
            .await?;
        Ok(())
    }

    pub async fn original(&self, user: Uuid, ws: Uuid, doc: Uuid) -> Result<Original, Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}/original");
        let response = self
            .send(self.request(Service::Ingest, Method::GET, &path, user)?)
            .await?;
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::unavailable("the original could not be read", e))?;
        Ok(Original {
            bytes: bytes.to_vec(),
            media_type,
        })
    }

    pub async fn conversations(&self, user: Uuid) -> Result<Vec<ConversationOut>, Error> {
        Ok(self
            .get::<ConversationList>(Service::Query, "/v1/conversations", user)
            .await?
            .conversations)
    }

    pub async fn conversation(&self, user: Uuid, id: Uuid) -> Result<ConversationDetail, Error> {
        self.get(Service::Query, &format!("/v1/conversations/{id}"), user)
            .await
    }

    pub async fn delete_conversation(&self, user: Uuid, id: Uuid) -> Result<(), Error> {
        let path = format!("/v1/conversations/{id}");
        self.send(self.request(Service::Query, Method::DELETE, &path, user)?)
            .await?;
        Ok(())
    }

    /// Asks a question; with `stream`, the response is the query service's event stream.
    pub async fn answer(&self, user: Uuid, body: &serde_json::Value) -> Result<Response, Error> {
        let request = self
            .request(Service::Query, Method::POST, "/v1/answer", user)?
            .timeout(Duration::from_secs(
                self.ctx.settings.llm.timeout_secs.max(60) * 3,
            ))
            .json(body);
        self.send(request).await
    }
}
