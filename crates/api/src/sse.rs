//! Server-Sent Events: the one writer ([`event`], [`data`]) every Lectern stream uses,
//! and the one reader ([`read`], over the maintained `eventsource-stream` parser) every
//! Lectern client uses, including the client of an OpenAI-compatible model server.

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;

/// A named event: `event: NAME` and one `data:` line of JSON.
pub fn event(name: &str, data: &impl Serialize) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {}\n\n", json(data)))
}

/// An unnamed event: one `data:` line (OpenAI's streams); `data` is written as is when
/// it is a string (such as `[DONE]`), as JSON otherwise.
pub fn data(data: &impl Serialize) -> Bytes {
    Bytes::from(format!("data: {}\n\n", json(data)))
}

/// OpenAI's end-of-stream marker.
pub const DONE: Bytes = Bytes::from_static(b"data: [DONE]\n\n");

fn json(data: &impl Serialize) -> String {
    // Serialising our own types into a string cannot fail; an empty object keeps the
    // frame well-formed if it ever did.
    serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned())
}

/// One received event: its name (`message` when unnamed) and its data lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

/// The events of a byte stream (an HTTP response body), as they complete. A character or
/// an event split across chunks is reassembled. Ends with the stream; a transport error
/// ends it with that error.
pub fn read<S, B, E>(body: S) -> BoxStream<'static, Result<Frame, String>>
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    body.eventsource()
        .map(|item| match item {
            Ok(e) => Ok(Frame {
                event: if e.event.is_empty() {
                    "message".to_owned()
                } else {
                    e.event
                },
                data: e.data,
            }),
            Err(e) => Err(e.to_string()),
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: Vec<&'static [u8]>) -> Vec<Frame> {
        let body = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        futures::executor::block_on(read(body).map(|f| f.unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads_back() {
        let mut bytes = event("token", &serde_json::json!({"text": "a\nb"})).to_vec();
        bytes.extend_from_slice(&data(&serde_json::json!({"x": 1})));
        bytes.extend_from_slice(&DONE);
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let got = frames(vec![leaked]);
        assert_eq!(
            got,
            vec![
                Frame {
                    event: "token".into(),
                    data: r#"{"text":"a\nb"}"#.into()
                },
                Frame {
                    event: "message".into(),
                    data: r#"{"x":1}"#.into()
                },
                Frame {
                    event: "message".into(),
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn events_and_characters_split_across_chunks_are_reassembled() {
        // "é" is two bytes in UTF-8; the chunk boundary falls between them and inside
        // the blank line that ends the event.
        let got = frames(vec![
            b"event: token\ndata: {\"text\": \"caf\xc3",
            b"\xa9\"}\n",
            b"\nevent: done\r\ndata: {}\r\n\r\n",
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].data, "{\"text\": \"café\"}");
        assert_eq!(got[1].event, "done");
    }
}
