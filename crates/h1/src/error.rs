//! Protocol errors and the one place they map to statuses.

/// Why a request was rejected. Each variant maps to exactly one status in [`Error::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// EOF in the middle of a head or body.
    Incomplete,
    /// The request line is not `method SP target SP version`.
    BadRequestLine,
    /// The method is not an upper-case token.
    BadMethod,
    /// The method is longer than any implemented one (`head::MAX_METHOD`).
    MethodTooLong,
    /// `CONNECT`: ironhorse is an origin server, not a proxy (RFC 9110 §9.3.6).
    ConnectNotSupported,
    /// The request-target has invalid bytes or a form the method does not allow.
    BadTarget,
    /// The version is not `HTTP/DIGIT.DIGIT`.
    BadVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
    /// The request line exceeds `Limits::max_request_line`.
    RequestLineTooLong,
    /// More header (or trailer) fields than `Limits::max_headers`.
    TooManyHeaders,
    /// One field line exceeds `Limits::max_header_size`.
    HeaderTooLarge,
    /// The whole head exceeds `Limits::max_head`.
    HeadTooLarge,
    /// An empty or non-token field name, or whitespace before the colon.
    BadHeaderName,
    /// A control character (other than HT) in a field value.
    BadHeaderValue,
    /// A bare CR or bare LF where CRLF is required.
    BadLineEnding,
    /// A field line starting with whitespace (obs-fold, RFC 9112 §5.2).
    ObsoleteFolding,
    /// An invalid, signed, list-form or duplicated `Content-Length`.
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (request smuggling vector).
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or `chunked` twice.
    BadTransferEncoding,
    /// A transfer coding other than `chunked` (we decode no others).
    UnsupportedTransferCoding,
    /// `Transfer-Encoding` in an HTTP/1.0 request.
    TransferEncodingInHttp10,
    /// An HTTP/1.1 request without `Host`.
    MissingHost,
    /// A `Host` value that is not `uri-host [ ":" port ]`, or empty on HTTP/1.1.
    BadHost,
    /// A field that must appear at most once appeared again (`Host`, `Content-Type`).
    DuplicateHeader,
    /// A trailer field that must not be sent in trailers (framing, routing, auth…).
    ForbiddenTrailer,
    /// A chunk-size line without a valid hex size.
    BadChunkSize,
    /// A malformed chunk extension.
    BadChunkExtension,
    /// Chunk data not followed by CRLF.
    ChunkMissingCrlf,
    /// The body exceeds `Limits::max_body`.
    BodyTooLarge,
}

impl Error {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Error::UnsupportedVersion => 505,
            Error::RequestLineTooLong => 414,
            Error::TooManyHeaders | Error::HeaderTooLarge | Error::HeadTooLarge => 431,
            Error::UnsupportedTransferCoding
            | Error::MethodTooLong
            | Error::ConnectNotSupported => 501,
            Error::BodyTooLarge => 413,
            Error::Incomplete
            | Error::BadRequestLine
            | Error::BadMethod
            | Error::BadTarget
            | Error::BadVersion
            | Error::BadHeaderName
            | Error::BadHeaderValue
            | Error::BadLineEnding
            | Error::ObsoleteFolding
            | Error::BadContentLength
            | Error::ContentLengthWithTransferEncoding
            | Error::BadTransferEncoding
            | Error::TransferEncodingInHttp10
            | Error::MissingHost
            | Error::BadHost
            | Error::DuplicateHeader
            | Error::ForbiddenTrailer
            | Error::BadChunkSize
            | Error::BadChunkExtension
            | Error::ChunkMissingCrlf => 400,
        }
    }

    /// A short human-readable reason, used as the error response body.
    pub fn message(&self) -> &'static str {
        match self {
            Error::Incomplete => "incomplete request",
            Error::BadRequestLine => "invalid request line",
            Error::BadMethod => "invalid method",
            Error::MethodTooLong => "method not implemented (too long)",
            Error::ConnectNotSupported => "CONNECT is not supported (not a proxy)",
            Error::BadTarget => "invalid request target",
            Error::BadVersion => "invalid HTTP version",
            Error::UnsupportedVersion => "HTTP version not supported",
            Error::RequestLineTooLong => "request line too long",
            Error::TooManyHeaders => "too many header fields",
            Error::HeaderTooLarge => "header field too large",
            Error::HeadTooLarge => "request head too large",
            Error::BadHeaderName => "invalid header name",
            Error::BadHeaderValue => "invalid header value",
            Error::BadLineEnding => "invalid line ending",
            Error::ObsoleteFolding => "obsolete line folding",
            Error::BadContentLength => "invalid Content-Length",
            Error::ContentLengthWithTransferEncoding => "Content-Length with Transfer-Encoding",
            Error::BadTransferEncoding => "invalid Transfer-Encoding",
            Error::UnsupportedTransferCoding => "unsupported transfer coding",
            Error::TransferEncodingInHttp10 => "Transfer-Encoding in HTTP/1.0",
            Error::MissingHost => "missing Host",
            Error::BadHost => "invalid Host",
            Error::DuplicateHeader => "duplicate header field",
            Error::ForbiddenTrailer => "forbidden trailer field",
            Error::BadChunkSize => "invalid chunk size",
            Error::BadChunkExtension => "invalid chunk extension",
            Error::ChunkMissingCrlf => "chunk data not followed by CRLF",
            Error::BodyTooLarge => "request body too large",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_limits_and_versions_to_their_statuses() {
        assert_eq!(Error::RequestLineTooLong.status(), 414);
        assert_eq!(Error::TooManyHeaders.status(), 431);
        assert_eq!(Error::HeaderTooLarge.status(), 431);
        assert_eq!(Error::UnsupportedVersion.status(), 505);
        assert_eq!(Error::BadVersion.status(), 400);
        assert_eq!(Error::UnsupportedTransferCoding.status(), 501);
        assert_eq!(Error::BodyTooLarge.status(), 413);
        assert_eq!(Error::Incomplete.status(), 400);
        assert_eq!(Error::MethodTooLong.status(), 501);
        assert_eq!(Error::ConnectNotSupported.status(), 501);
        assert_eq!(Error::BadHost.status(), 400);
    }
}
