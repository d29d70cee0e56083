//! Protocol errors and the one place they map to statuses.

/// Why a request was rejected. Each variant maps to exactly one status in [`Error::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// EOF in the middle of a head or body.
    Incomplete,
    // ... implementation-defined variants
}

impl Error {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        todo!()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Error {}
