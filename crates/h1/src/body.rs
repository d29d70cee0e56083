//! Body decoders: Content-Length and chunked.
