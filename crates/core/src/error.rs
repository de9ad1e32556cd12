use std::fmt;

/// A boxed cause kept for logs; never shown to end users as is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors at the seams, sorted by what the caller can do about them.
///
/// `Invalid`, `TooLarge`, `NotFound`, `Conflict`, `Unauthenticated` and `Forbidden` are the caller's to fix and are safe to show;
/// `Unavailable` is transient (retry with backoff: a database or index that is down);
/// `Internal` is a bug or a broken installation and is logged with its cause chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    /// A request (or a part of it) over a size limit, refused before it was read whole;
    /// the message says the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// No credentials, or ones that are not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// Known caller, not allowed this action (e.g. a viewer uploading).
    #[error("{0}")]
    Forbidden(String),
    /// Too much work queued right now (a full generation queue, a rate limit): try again
    /// after `retry_after` seconds.
    #[error("{message}")]
    Busy { message: String, retry_after: u64 },
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{message}")]
    Internal {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    pub fn unavailable(message: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    pub fn internal(message: impl fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    pub fn internal_msg(message: impl fmt::Display) -> Self {
        Self::Internal {
            message: message.to_string(),
            source: None,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Busy { .. })
    }

    /// Seconds after which a busy service may take the call again.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// A stable machine-readable code for API bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_input",
            Self::TooLarge(_) => "too_large",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::Busy { .. } => "busy",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }

    /// The error a [`code`](Self::code) and message stand for, as another service
    /// answered them: the inverse of `code()`, so an error crosses HTTP unchanged in kind.
    /// A busy one waits 5 seconds unless the answer said otherwise
    /// ([`with_retry_after`](Self::with_retry_after)).
    pub fn from_code(code: &str, message: String) -> Self {
        match code {
            "invalid_input" => Self::Invalid(message),
            "too_large" => Self::TooLarge(message),
            "not_found" => Self::NotFound(message),
            "conflict" => Self::Conflict(message),
            "unauthenticated" => Self::Unauthenticated(message),
            "forbidden" => Self::Forbidden(message),
            "busy" => Self::Busy {
                message,
                retry_after: 5,
            },
            "unavailable" => Self::Unavailable {
                message,
                source: None,
            },
            _ => Self::Internal {
                message,
                source: None,
            },
        }
    }

    /// The same error waiting `seconds` if it is [`Busy`](Self::Busy): the `Retry-After`
    /// a busy service answered, kept across HTTP. Other kinds are returned unchanged.
    pub fn with_retry_after(self, seconds: u64) -> Self {
        match self {
            Self::Busy { message, .. } => Self::Busy {
                message,
                retry_after: seconds,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_its_kind() {
        let all = [
            Error::Invalid("a".into()),
            Error::TooLarge("i".into()),
            Error::NotFound("b".into()),
            Error::Conflict("c".into()),
            Error::Unauthenticated("d".into()),
            Error::Forbidden("e".into()),
            Error::unavailable("f", "down"),
            Error::internal_msg("g"),
            Error::Busy {
                message: "h".into(),
                retry_after: 5,
            },
        ];
        for e in all {
            let back = Error::from_code(e.code(), e.to_string());
            assert_eq!(back.code(), e.code());
            assert_eq!(back.to_string(), e.to_string());
        }
        assert_eq!(Error::from_code("teapot", "x".into()).code(), "internal");
    }

    #[test]
    fn a_busy_error_keeps_the_wait_it_was_told() {
        let busy = || Error::from_code("busy", "full".into());
        assert_eq!(busy().retry_after(), Some(5), "the default when not told");
        assert_eq!(busy().with_retry_after(30).retry_after(), Some(30));
        let other = Error::from_code("not_found", "gone".into()).with_retry_after(30);
        assert_eq!((other.code(), other.retry_after()), ("not_found", None));
    }
}
