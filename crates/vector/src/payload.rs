//! The payload stored with every point: enough to filter by tenant, document and version,
//! and to cite page and passage without a trip to SQL. The title is the one the version
//! was indexed with (a rename does not write the points again); the document's name and
//! current title are read from SQL wherever they are shown.

use lectern_core::{ChunkPoint, Error, PageRange, Result, Span, WorkspaceScope};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::text::Language;

pub(crate) const WORKSPACE: &str = "workspace_id";
pub(crate) const DOCUMENT: &str = "document_id";
pub(crate) const VERSION: &str = "version";

/// The payload of a chunk whose text is in `language` (recorded when it was told, for
/// filtering by language; nothing reads it back yet).
pub(crate) fn to_json(c: &ChunkPoint, language: Option<Language>) -> Value {
    let mut value = json!({
        WORKSPACE: c.workspace_id.to_string(),
        DOCUMENT: c.document_id.to_string(),
        VERSION: c.version,
        "chunk_index": c.chunk_index,
        "page_start": c.pages.start,
        "page_end": c.pages.end,
        "char_start": c.span.start,
        "char_end": c.span.end,
        "title": c.title,
        "text": c.text,
    });
    if let Some(header) = &c.table_header {
        value[TABLE_HEADER] = json!(header);
    }
    if let Some(anchor) = &c.anchor {
        value[ANCHOR] = json!(anchor);
    }
    if let Some(language) = language {
        value[LANGUAGE] = json!(language.name());
    }
    value
}

/// Only on points whose language was told (older points never have it).
const LANGUAGE: &str = "language";

/// Only on points whose text starts inside a table (older points never have it).
const TABLE_HEADER: &str = "table_header";
/// Only on web pages' points whose text follows a heading with an anchor.
const ANCHOR: &str = "anchor";

pub(crate) fn from_json(map: &Map<String, Value>) -> Result<ChunkPoint> {
    let bad = |field: &str| Error::internal_msg(format!("index point without a valid {field:?}"));
    let text = |field: &str| {
        map.get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(field))
    };
    let int = |field: &str| {
        map.get(field)
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(field))
    };
    let uuid = |field: &str| text(field).and_then(|s| Uuid::parse_str(s).map_err(|_| bad(field)));
    Ok(ChunkPoint {
        workspace_id: uuid(WORKSPACE)?,
        document_id: uuid(DOCUMENT)?,
        version: i32::try_from(int(VERSION)?).map_err(|_| bad(VERSION))?,
        chunk_index: u32::try_from(int("chunk_index")?).map_err(|_| bad("chunk_index"))?,
        pages: PageRange {
            start: u32::try_from(int("page_start")?).map_err(|_| bad("page_start"))?,
            end: u32::try_from(int("page_end")?).map_err(|_| bad("page_end"))?,
        },
        span: Span {
            start: usize::try_from(int("char_start")?).map_err(|_| bad("char_start"))?,
            end: usize::try_from(int("char_end")?).map_err(|_| bad("char_end"))?,
        },
        title: text("title")?.to_owned(),
        text: text("text")?.to_owned(),
        table_header: map
            .get(TABLE_HEADER)
            .and_then(Value::as_str)
            .map(str::to_owned),
        anchor: map.get(ANCHOR).and_then(Value::as_str).map(str::to_owned),
    })
}

/// Chunks read back by id, as [`lectern_core::VectorIndex::chunks`] returns them: only
/// those whose workspace is in `scope`, in chunk order. Reading by id bypasses the
/// index's filter, so the scope is applied here, the same for both implementations.
pub(crate) fn in_scope(
    chunks: impl IntoIterator<Item = Result<ChunkPoint>>,
    scope: &WorkspaceScope,
) -> Result<Vec<ChunkPoint>> {
    let mut kept = Vec::new();
    for chunk in chunks {
        let chunk = chunk?;
        if scope.contains(chunk.workspace_id) {
            kept.push(chunk);
        }
    }
    kept.sort_by_key(|c| c.chunk_index);
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let chunk = ChunkPoint {
            workspace_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            version: 3,
            chunk_index: 7,
            pages: PageRange { start: 4, end: 5 },
            span: Span {
                start: 100,
                end: 900,
            },
            title: "Manual".into(),
            text: "Naïve café ☕".into(),
            table_header: None,
            anchor: None,
        };
        let Value::Object(map) = to_json(&chunk, None) else {
            panic!("not an object")
        };
        assert!(
            !map.contains_key(TABLE_HEADER) && !map.contains_key(ANCHOR),
            "written only when there is one"
        );
        assert!(!map.contains_key(LANGUAGE), "written only when told");
        assert_eq!(from_json(&map).unwrap(), chunk);
        let rows = ChunkPoint {
            table_header: Some("| a | b |\n| --- | --- |".into()),
            anchor: Some("rates".into()),
            ..chunk
        };
        let Value::Object(map) = to_json(&rows, Some(Language::German)) else {
            panic!("not an object")
        };
        assert_eq!(map[LANGUAGE], "german");
        assert_eq!(from_json(&map).unwrap(), rows);
    }

    #[test]
    fn a_damaged_payload_is_an_error_not_a_panic() {
        let mut map = Map::new();
        map.insert(WORKSPACE.into(), "not-a-uuid".into());
        assert!(from_json(&map).is_err());
    }
}
