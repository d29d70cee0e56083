//! permessage-deflate (RFC 7692): reading a client's offer, choosing the parameters we
//! answer with, and the per-connection compressor and decompressor.

mod codec;

pub(crate) use codec::{Deflater, InflateError, Inflater};

use crate::extension::Extension;

/// The extension token.
pub const NAME: &str = "permessage-deflate";

/// One valid permessage-deflate offer from a client (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateOffer {
    /// The client asks us not to reuse the compression context between messages.
    pub server_no_context_takeover: bool,
    /// The client announces it will not reuse its context (we may confirm it).
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window we may compress with (8–15).
    pub server_max_window_bits: Option<u8>,
    /// The client accepts a `client_max_window_bits` in the answer (hint present).
    pub client_max_window_bits_hint: bool,
    /// The window the client will compress with, when it said (8–15).
    pub client_max_window_bits: Option<u8>,
}

/// Negotiated permessage-deflate parameters: what a [`Connection`](crate::Connection)
/// compresses and decompresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// We reset our compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (so can our decompressor).
    pub client_no_context_takeover: bool,
    /// The window we compress with (9–15).
    pub server_max_window_bits: u8,
    /// Say `server_max_window_bits` in the answer even at 15: an offer naming it must get it
    /// back (RFC 7692 §7.1.2.1).
    pub announce_server_max_window_bits: bool,
    /// The compression level (0–9) we compress with.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (not worth the CPU and the header).
    pub min_size: usize,
}

/// A window-bits value: 8–15, decimal digits, no leading zero (RFC 7692 §7.1.2.1).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 {
        return None;
    }
    value.parse().ok().filter(|b| (8..=15).contains(b))
}

impl DeflateOffer {
    /// Reads one `permessage-deflate` element. `None` (decline this offer) for an unknown
    /// parameter, a repeated one, a missing or malformed value, or a value where none is
    /// allowed (RFC 7692 §5.1).
    pub(crate) fn from_extension(ext: &Extension) -> Option<DeflateOffer> {
        if !ext.name.eq_ignore_ascii_case(NAME) {
            return None;
        }
        let mut offer = DeflateOffer::default();
        let mut seen = Vec::new();
        for (name, value) in &ext.params {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return None;
            }
            match (name.as_str(), value.as_deref()) {
                ("server_no_context_takeover", None) => offer.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => offer.client_no_context_takeover = true,
                ("server_max_window_bits", Some(v)) => {
                    offer.server_max_window_bits = Some(window_bits(v)?)
                }
                ("client_max_window_bits", v) => {
                    offer.client_max_window_bits_hint = true;
                    if let Some(v) = v {
                        offer.client_max_window_bits = Some(window_bits(v)?);
                    }
                }
                _ => return None,
            }
            seen.push(name);
        }
        Some(offer)
    }

    /// Whether we can honour this offer: a compressor window of 8 bits is not supported by
    /// zlib's raw deflate (it silently uses 9, which a 256-byte window cannot decode).
    pub(crate) fn is_supported(&self) -> bool {
        self.server_max_window_bits != Some(8)
    }

    /// The parameters we accept this offer with, given our own preferences.
    pub(crate) fn accept(&self, config: &crate::Config) -> Deflate {
        let ours = config.deflate_window_bits.clamp(9, 15);
        Deflate {
            server_no_context_takeover: self.server_no_context_takeover
                || config.deflate_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits.map_or(ours, |b| b.min(ours)),
            announce_server_max_window_bits: self.server_max_window_bits.is_some(),
            level: config.deflate_level.min(9),
            min_size: config.deflate_min_size,
        }
    }
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` answer. Our decompressor always has a 15-bit window,
    /// which reads any client window, so `client_max_window_bits` is never narrowed.
    pub fn response_header(&self) -> String {
        let mut h = String::from(NAME);
        if self.server_no_context_takeover {
            h.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            h.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 || self.announce_server_max_window_bits {
            h.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension;

    fn offer(s: &str) -> Option<DeflateOffer> {
        DeflateOffer::from_extension(&extension::parse(s.as_bytes()).unwrap()[0])
    }

    #[test]
    fn valid_offers() {
        assert_eq!(offer("permessage-deflate"), Some(DeflateOffer::default()));
        let o = offer("permessage-deflate; client_max_window_bits; server_max_window_bits=10; server_no_context_takeover").unwrap();
        assert!(o.client_max_window_bits_hint && o.server_no_context_takeover);
        assert_eq!(
            (o.server_max_window_bits, o.client_max_window_bits),
            (Some(10), None)
        );
        let o = offer("permessage-deflate; client_max_window_bits=\"12\"").unwrap();
        assert_eq!(o.client_max_window_bits, Some(12));
    }

    #[test]
    fn invalid_offers_are_declined() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; foo",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(offer(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_narrows_our_window_and_echoes_takeover() {
        let config = crate::Config::default();
        let o = offer("permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_no_context_takeover").unwrap();
        let d = o.accept(&config);
        assert_eq!(d.server_max_window_bits, 10);
        assert_eq!(
            d.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits")
                .unwrap()
                .accept(&config)
                .response_header(),
            NAME
        );
        assert!(!offer("permessage-deflate; server_max_window_bits=8")
            .unwrap()
            .is_supported());
        // Named in the offer: named in the answer, even at the default.
        let d = offer("permessage-deflate; server_max_window_bits=15")
            .unwrap()
            .accept(&config);
        assert_eq!(
            d.response_header(),
            "permessage-deflate; server_max_window_bits=15"
        );
    }
}
