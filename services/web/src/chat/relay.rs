//! The streamed answer, relayed from the query service to the browser: `token`, `done`
//! and `error` events pass on as they are; the `answer` event becomes an `html` event,
//! the exchange rendered by the same template as the conversation page, so the page has
//! one rendering only. Dropping the browser's connection drops the upstream stream,
//! which cancels the answer.

use askama::Template;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use lectern_api::query::AnswerEvent;
use lectern_api::sse;
use lectern_core::Error;
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::chat::view::exchange;
use crate::error::WebError;

#[derive(Template)]
#[template(path = "exchange_fragment.html")]
pub struct ExchangeFragment {
    pub csrf: String,
    pub m: crate::chat::view::Exchange,
}

/// The `html` event: the rendered exchange and where it belongs.
#[derive(Serialize)]
struct HtmlEvent {
    html: String,
    conversation_id: Uuid,
    message_id: Uuid,
}

fn error_event(e: Error) -> Bytes {
    AnswerEvent::Error(WebError::from(e).public().1).to_sse()
}

/// Passes the upstream events on until the browser goes away or the stream ends.
pub async fn relay(
    mut upstream: impl Stream<Item = Result<AnswerEvent, Error>> + Unpin,
    tx: mpsc::UnboundedSender<Bytes>,
    question: String,
    csrf: String,
) {
    while let Some(event) = upstream.next().await {
        let out = match event {
            Err(e) => error_event(e),
            Ok(AnswerEvent::Answer(result)) => {
                let fragment = ExchangeFragment {
                    csrf: csrf.clone(),
                    m: exchange(
                        result.conversation_id,
                        result.message_id,
                        question.clone(),
                        &result.answer,
                        None,
                    ),
                };
                match fragment.render() {
                    Ok(html) => sse::event(
                        "html",
                        &HtmlEvent {
                            html,
                            conversation_id: result.conversation_id,
                            message_id: result.message_id,
                        },
                    ),
                    Err(e) => error_event(Error::internal("the answer could not be shown", e)),
                }
            }
            Ok(event) => event.to_sse(),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}
