//! Whether a connection's buffered input is worth a thread: pool drivers keep connections
//! in their watcher while a head is still arriving, so clients trickling their heads
//! (slowloris) hold no thread, and hand them over once [`head_ready`] says the engine has
//! something to act on. A conservative test over raw bytes, not a parse: a false "ready"
//! only costs a thread one look (the driver gives back a connection still mid-head), a
//! false "not ready" would delay an answer, so every byte pattern the engine rejects at
//! once counts as ready too.

use ironhorse_h1::Limits;

/// Whether `buffered` (the unparsed input of a connection between requests) holds a whole
/// head, something the engine answers with an error, or more than a head may be.
pub(super) fn head_ready(buffered: &[u8], limits: &Limits) -> bool {
    let most = limits.max_request_line + limits.max_headers * (limits.max_header_size + 2) + 4;
    buffered.len() > most
        // The blank line after the fields (a bare LF one is an error: also ready).
        || buffered.windows(2).any(|w| w == b"\n\n")
        || buffered.windows(3).any(|w| w == b"\n\r\n")
        // A bare CR.
        || buffered.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
        || buffered
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_heads_and_errors_are_ready_partial_heads_are_not() {
        let limits = Limits::default();
        let ready = |b: &[u8]| head_ready(b, &limits);
        assert!(!ready(b""));
        assert!(!ready(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!ready(b"GET / HTTP/1.1\r\nHost: a\r\n\r"));
        assert!(!ready(b"GET / HT"));
        assert!(ready(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(ready(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST"));
        assert!(
            ready(b"GET / HTTP/1.1\nHost: a\n\n"),
            "bare LF: a 400 to send"
        );
        assert!(ready(b"GET / HTTP/1.1\rX"), "bare CR");
        assert!(ready(b"GET /\0"), "a control byte");
        assert!(ready(&vec![b'a'; 2_000_000]), "longer than any head");
    }
}
