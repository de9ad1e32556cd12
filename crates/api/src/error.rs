use lectern_core::Error;
use serde::{Deserialize, Serialize};

/// The JSON body of every error answer of Lectern's APIs: a stable `code` (see
/// [`Error::code`]) and a message that says what to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    /// The error this body stands for, of the same kind as on the server.
    pub fn into_error(self) -> Error {
        Error::from_code(&self.code, self.message)
    }
}
