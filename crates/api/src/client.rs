//! A typed client of the ingest and query APIs.

use std::time::Duration;

use futures::{Stream, StreamExt};
use lectern_core::Error;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::ingest::{
    CreateSource, CreateWorkspace, DocumentList, DocumentOut, SourceList, SourceOut, TextUpload,
    UpdateSource, UploadResult, WorkspaceList, WorkspaceOut,
};
use crate::query::{
    AnswerBody, AnswerEvent, AnswerResult, ConversationDetail, ConversationList, ConversationOut,
    SearchBody, SearchResult,
};
use crate::{ACT_AS_HEADER, ErrorBody, sse};

/// Who the client calls as.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A person's API key.
    ApiKey(String),
    /// Lectern's own service token, acting for `user` (the web app).
    Service { token: String, user: Uuid },
}

/// Which service a call goes to.
#[derive(Debug, Clone, Copy)]
enum Service {
    Ingest,
    Query,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Ingest => "the document service (ingest)",
            Self::Query => "the answer service (query)",
        }
    }
}

/// A document's original, as ingest serves it.
pub struct Original {
    pub bytes: Vec<u8>,
    pub media_type: String,
}

/// A document's original as ingest streams it, not yet read: pass it on with
/// [`OriginalStream::into_stream`] without holding it whole in memory.
pub struct OriginalStream {
    pub media_type: String,
    /// The size in bytes, when ingest said it.
    pub size: Option<u64>,
    response: Response,
}

impl OriginalStream {
    /// The bytes as they arrive.
    pub fn into_stream(self) -> impl Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static {
        self.response
            .bytes_stream()
            .map(|chunk| chunk.map_err(original_broke_off))
    }
}

fn original_broke_off(e: reqwest::Error) -> Error {
    Error::unavailable("the original could not be read", e)
}

/// A client of Lectern's ingest and query APIs. Cheap to clone; errors come back as the
/// [`Error`] the service answered (its `code` decides the kind).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    ingest: String,
    query: String,
    auth: Auth,
    answer_timeout: Duration,
}

impl Client {
    /// A client of the services at `ingest_url` and `query_url` (the same address when
    /// one process runs both).
    pub fn new(http: reqwest::Client, ingest_url: &str, query_url: &str, auth: Auth) -> Self {
        Self {
            http,
            ingest: ingest_url.trim_end_matches('/').to_owned(),
            query: query_url.trim_end_matches('/').to_owned(),
            auth,
            answer_timeout: Duration::from_secs(600),
        }
    }

    /// The longest an answer may take (prompt reading and generation included).
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout;
        self
    }

    fn request(&self, service: Service, method: Method, path: &str) -> RequestBuilder {
        let base = match service {
            Service::Ingest => &self.ingest,
            Service::Query => &self.query,
        };
        let request = self.http.request(method, format!("{base}{path}"));
        match &self.auth {
            Auth::ApiKey(key) => request.bearer_auth(key),
            Auth::Service { token, user } => request
                .bearer_auth(token)
                .header(ACT_AS_HEADER, user.to_string()),
        }
    }

    /// Sends, and turns an error answer back into the error it was.
    async fn send(&self, service: Service, request: RequestBuilder) -> Result<Response, Error> {
        let response = request.send().await.map_err(|e| {
            Error::unavailable(
                format!("{} did not answer; try again shortly", service.name()),
                e,
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // Read before the body consumes the response: how long a busy service asked
        // its callers to wait, passed on to ours.
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let err = match response.json::<ErrorBody>().await {
            Ok(body) => body.into_error(),
            Err(_) => Error::from_code(
                if status.is_server_error() {
                    "unavailable"
                } else {
                    "invalid_input"
                },
                format!("{} answered {status}", service.name()),
            ),
        };
        Err(match retry_after {
            Some(seconds) => err.with_retry_after(seconds),
            None => err,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        service: Service,
        request: RequestBuilder,
    ) -> Result<T, Error> {
        self.send(service, request)
            .await?
            .json()
            .await
            .map_err(|e| {
                Error::internal(
                    format!("the answer of {} was not understood", service.name()),
                    e,
                )
            })
    }

    async fn get<T: DeserializeOwned>(&self, service: Service, path: &str) -> Result<T, Error> {
        self.json(service, self.request(service, Method::GET, path))
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.json(
            service,
            self.request(service, Method::POST, path).json(body),
        )
        .await
    }

    async fn call(&self, service: Service, method: Method, path: &str) -> Result<(), Error> {
        self.send(service, self.request(service, method, path))
            .await
            .map(drop)
    }

    // The ingest API.

    pub async fn workspaces(&self) -> Result<Vec<WorkspaceOut>, Error> {
        let list: WorkspaceList = self.get(Service::Ingest, "/v1/workspaces").await?;
        Ok(list.workspaces)
    }

    pub async fn create_workspace(&self, name: &str) -> Result<WorkspaceOut, Error> {
        let body = CreateWorkspace { name: name.into() };
        self.post(Service::Ingest, "/v1/workspaces", &body).await
    }

    pub async fn documents(&self, ws: Uuid) -> Result<Vec<DocumentOut>, Error> {
        let path = format!("/v1/workspaces/{ws}/documents");
        let list: DocumentList = self.get(Service::Ingest, &path).await?;
        Ok(list.documents)
    }

    pub async fn document(&self, ws: Uuid, doc: Uuid) -> Result<DocumentOut, Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}");
        self.get(Service::Ingest, &path).await
    }

    /// Uploads files (a multipart form of `file` fields).
    pub async fn upload(
        &self,
        ws: Uuid,
        form: reqwest::multipart::Form,
    ) -> Result<UploadResult, Error> {
        let path = format!("/v1/workspaces/{ws}/documents");
        let request = self
            .request(Service::Ingest, Method::POST, &path)
            .multipart(form);
        self.json(Service::Ingest, request).await
    }

    /// Uploads texts sent as JSON.
    pub async fn upload_texts(&self, ws: Uuid, texts: &TextUpload) -> Result<UploadResult, Error> {
        let path = format!("/v1/workspaces/{ws}/documents");
        self.post(Service::Ingest, &path, texts).await
    }

    pub async fn delete_document(&self, ws: Uuid, doc: Uuid) -> Result<(), Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}");
        self.call(Service::Ingest, Method::DELETE, &path).await
    }

    pub async fn reindex_document(&self, ws: Uuid, doc: Uuid) -> Result<(), Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}/reindex");
        self.call(Service::Ingest, Method::POST, &path).await
    }

    /// The original read whole into memory (for a reader that needs all of it at once).
    pub async fn original(&self, ws: Uuid, doc: Uuid) -> Result<Original, Error> {
        let original = self.original_stream(ws, doc).await?;
        let bytes = original
            .response
            .bytes()
            .await
            .map_err(original_broke_off)?;
        Ok(Original {
            bytes: bytes.to_vec(),
            media_type: original.media_type,
        })
    }

    /// The original as it arrives, to be passed on without holding it whole.
    pub async fn original_stream(&self, ws: Uuid, doc: Uuid) -> Result<OriginalStream, Error> {
        let path = format!("/v1/workspaces/{ws}/documents/{doc}/original");
        let response = self
            .send(
                Service::Ingest,
                self.request(Service::Ingest, Method::GET, &path),
            )
            .await?;
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok(OriginalStream {
            media_type,
            size: response.content_length(),
            response,
        })
    }

    /// The workspace's synced sources.
    pub async fn sources(&self, ws: Uuid) -> Result<Vec<SourceOut>, Error> {
        let path = format!("/v1/workspaces/{ws}/sources");
        let list: SourceList = self.get(Service::Ingest, &path).await?;
        Ok(list.sources)
    }

    /// Adds a source to the workspace; its first sync is queued at once.
    pub async fn create_source(&self, ws: Uuid, body: &CreateSource) -> Result<SourceOut, Error> {
        let path = format!("/v1/workspaces/{ws}/sources");
        self.post(Service::Ingest, &path, body).await
    }

    pub async fn source(&self, ws: Uuid, source: Uuid) -> Result<SourceOut, Error> {
        let path = format!("/v1/workspaces/{ws}/sources/{source}");
        self.get(Service::Ingest, &path).await
    }

    /// Changes the source's name, schedule or settings; the next sync applies them.
    pub async fn update_source(
        &self,
        ws: Uuid,
        source: Uuid,
        body: &UpdateSource,
    ) -> Result<SourceOut, Error> {
        let path = format!("/v1/workspaces/{ws}/sources/{source}");
        self.json(
            Service::Ingest,
            self.request(Service::Ingest, Method::PATCH, &path)
                .json(body),
        )
        .await
    }

    /// Queues a sync of the source now.
    pub async fn sync_source(&self, ws: Uuid, source: Uuid) -> Result<SourceOut, Error> {
        let path = format!("/v1/workspaces/{ws}/sources/{source}/sync");
        self.json(
            Service::Ingest,
            self.request(Service::Ingest, Method::POST, &path),
        )
        .await
    }

    /// Removes the source and every document it owns.
    pub async fn delete_source(&self, ws: Uuid, source: Uuid) -> Result<(), Error> {
        let path = format!("/v1/workspaces/{ws}/sources/{source}");
        self.call(Service::Ingest, Method::DELETE, &path).await
    }

    // The query API.

    pub async fn search(&self, body: &SearchBody) -> Result<SearchResult, Error> {
        self.post(Service::Query, "/v1/search", body).await
    }

    fn answer_request(&self, body: &AnswerBody) -> RequestBuilder {
        self.request(Service::Query, Method::POST, "/v1/answer")
            .timeout(self.answer_timeout)
            .json(body)
    }

    /// The whole answer as JSON (`stream` is ignored).
    pub async fn answer(&self, body: &AnswerBody) -> Result<AnswerResult, Error> {
        let body = AnswerBody {
            stream: false,
            ..body.clone()
        };
        self.json(Service::Query, self.answer_request(&body)).await
    }

    /// The answer as its events, as the service sends them. Dropping the stream closes
    /// the connection, which cancels the answer.
    pub async fn answer_stream(
        &self,
        body: &AnswerBody,
    ) -> Result<impl Stream<Item = Result<AnswerEvent, Error>> + Send + Unpin + use<>, Error> {
        let body = AnswerBody {
            stream: true,
            ..body.clone()
        };
        let response = self
            .send(Service::Query, self.answer_request(&body))
            .await?;
        let events = sse::read(response.bytes_stream()).filter_map(|frame| async move {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    return Some(Err(Error::unavailable(
                        "the answer broke off; ask again",
                        std::io::Error::other(e),
                    )));
                }
            };
            match AnswerEvent::from_sse(&frame.event, &frame.data) {
                Ok(Some(event)) => Some(Ok(event)),
                Ok(None) => None,
                Err(e) => Some(Err(Error::internal(
                    format!("the answer's {:?} event was not understood", frame.event),
                    e,
                ))),
            }
        });
        Ok(Box::pin(events))
    }

    pub async fn conversations(&self) -> Result<Vec<ConversationOut>, Error> {
        let list: ConversationList = self.get(Service::Query, "/v1/conversations").await?;
        Ok(list.conversations)
    }

    pub async fn conversation(&self, id: Uuid) -> Result<ConversationDetail, Error> {
        self.get(Service::Query, &format!("/v1/conversations/{id}"))
            .await
    }

    pub async fn delete_conversation(&self, id: Uuid) -> Result<(), Error> {
        let path = format!("/v1/conversations/{id}");
        self.call(Service::Query, Method::DELETE, &path).await
    }
}
