use lectern_core::ParseError;

/// The types Lectern reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html",
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
        }
    }

    pub fn from_mime(mime: &str) -> Result<Self, ParseError> {
        [
            Self::Pdf,
            Self::Docx,
            Self::Html,
            Self::Markdown,
            Self::Text,
        ]
        .into_iter()
        .find(|t| t.mime() == mime)
        .ok_or_else(|| ParseError::Unsupported(mime.to_owned()))
    }
}

/// The media type from the content first (magic bytes), the file name's extension only to
/// tell apart text formats that have no signature. A `.pdf` that is not a PDF is refused
/// rather than read as garbage.
pub fn detect_media_type(bytes: &[u8], file_name: &str) -> Result<MediaType, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Ok(MediaType::Pdf);
    }
    if let Some(kind) = infer::get(bytes) {
        return match kind.mime_type() {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Ok(MediaType::Docx)
            }
            "application/zip" if ext == "docx" => Ok(MediaType::Docx),
            "text/html" => Ok(MediaType::Html),
            other => Err(ParseError::Unsupported(format!("{other} ({file_name})"))),
        };
    }
    if ext == "pdf" || ext == "docx" {
        return Err(ParseError::Malformed(format!(
            "{file_name} does not look like a .{ext} file"
        )));
    }
    let text_like = std::str::from_utf8(head).is_ok() || !head.contains(&0);
    if !text_like {
        return Err(ParseError::Unsupported(format!("binary file {file_name}")));
    }
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    Ok(match ext.as_str() {
        "html" | "htm" | "xhtml" => MediaType::Html,
        "md" | "markdown" => MediaType::Markdown,
        _ if lower.trim_start().starts_with("<!doctype html") || lower.contains("<html") => {
            MediaType::Html
        }
        "txt" | "text" | "" | "csv" | "log" | "rst" => MediaType::Text,
        other => {
            return Err(ParseError::Unsupported(format!(
                ".{other} files ({file_name})"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_wins_over_the_extension() {
        assert_eq!(
            detect_media_type(b"%PDF-1.7\n...", "notes.txt").unwrap(),
            MediaType::Pdf
        );
        assert_eq!(
            detect_media_type(b"<!DOCTYPE html><html>", "page").unwrap(),
            MediaType::Html
        );
        assert!(matches!(
            detect_media_type(b"hello", "report.pdf"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            detect_media_type(b"\x89PNG\r\n\x1a\n\0\0", "scan.txt"),
            Err(ParseError::Unsupported(_))
        ));
    }

    #[test]
    fn text_formats_go_by_extension() {
        assert_eq!(
            detect_media_type(b"# Title", "README.md").unwrap(),
            MediaType::Markdown
        );
        assert_eq!(
            detect_media_type(b"plain words", "notes.txt").unwrap(),
            MediaType::Text
        );
        assert!(matches!(
            detect_media_type(b"x = 1", "main.exe"),
            Err(ParseError::Unsupported(_))
        ));
        assert_eq!(detect_media_type(b"", "a.txt"), Err(ParseError::Empty));
    }
}
