//! The pieces of forwarding headers: one hop's address (`X-Forwarded-For` entries and
//! `Forwarded`'s `for=` nodes), the walk that finds the client among the hops, and hosts.

use std::net::{IpAddr, Ipv6Addr};

use crate::AllowList;

/// One hop of a forwarding chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// An address, with the port when the proxy gave one.
    Addr(IpAddr, Option<u16>),
    /// `unknown`, an obfuscated identifier (`_hidden`), or something unreadable: nobody
    /// can say whether that hop is trusted.
    Opaque,
}

impl Hop {
    /// Reads `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]`,
    /// `[2001:db8::1]:80`; anything else is [`Hop::Opaque`].
    pub fn parse(text: &str) -> Hop {
        let text = text.trim_matches(|c| c == ' ' || c == '\t');
        if let Some(rest) = text.strip_prefix('[') {
            let Some((addr, after)) = rest.split_once(']') else {
                return Hop::Opaque;
            };
            let Ok(ip) = addr.parse::<Ipv6Addr>() else {
                return Hop::Opaque;
            };
            return match after {
                "" => Hop::Addr(IpAddr::V6(ip), None),
                _ => match after.strip_prefix(':').and_then(port) {
                    Some(p) => Hop::Addr(IpAddr::V6(ip), Some(p)),
                    None => Hop::Opaque,
                },
            };
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Hop::Addr(ip, None);
        }
        match text.split_once(':') {
            Some((addr, p)) => match (addr.parse::<std::net::Ipv4Addr>(), port(p)) {
                (Ok(ip), Some(p)) => Hop::Addr(IpAddr::V4(ip), Some(p)),
                _ => Hop::Opaque,
            },
            None => Hop::Opaque,
        }
    }
}

/// A decimal port, 1 to 5 digits.
fn port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Where the walk over a chain of hops stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The hop that describes the client's request, counted from the right (0: the hop the
    /// peer itself reported).
    pub from_right: usize,
    /// The client's address: the hop itself, or — when that hop is opaque — the nearest
    /// address to its right that a trusted party vouched for (`None`: the peer itself).
    pub client: Option<(IpAddr, Option<u16>)>,
}

/// Finds the client among `hops`, given rightmost first (proxies append, so the walk starts
/// at the hop the peer reported): trusted addresses are proxies and are skipped; the first
/// address that is not trusted is the client. When every address is trusted, the leftmost is
/// the client. An opaque hop stops the walk: nobody vouches for what lies left of it.
pub fn pick(hops: impl Iterator<Item = Hop>, allow: &AllowList) -> Option<Pick> {
    let mut hops = hops.peekable();
    let mut nearest = None;
    let mut from_right = 0;
    while let Some(hop) = hops.next() {
        let leftmost = hops.peek().is_none();
        match hop {
            Hop::Addr(ip, port) if !leftmost && allow.contains(ip) => nearest = Some((ip, port)),
            Hop::Addr(ip, port) => {
                return Some(Pick {
                    from_right,
                    client: Some((ip, port)),
                })
            }
            Hop::Opaque => {
                return Some(Pick {
                    from_right,
                    client: nearest,
                })
            }
        }
        from_right += 1;
    }
    None
}

/// Checks a forwarded host (`example.com`, `example.com:8443`, `[2001:db8::1]:8080`): a
/// name of letters, digits, `-._~%`, or a bracketed IPv6 address, and an optional port. A
/// value with anything else (spaces, `/`, `@`, commas) is refused, so it cannot smuggle a
/// path or a second host into the URLs the application builds.
pub fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let (name, port_part) = if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) => (Some(name), Some(p)),
            None => (Some(host), None),
        }
    };
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    });
    name_ok && port_part.is_none_or(|p| port(p).is_some())
}

/// Splits a valid host into the name (brackets kept for IPv6) and the port.
pub fn split_host(host: &str) -> (&str, Option<u16>) {
    if host.starts_with('[') {
        return match host.rsplit_once("]:") {
            Some((name, p)) => (&host[..name.len() + 1], port(p)),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, p)) => (name, port(p)),
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str, port: Option<u16>) -> Hop {
        Hop::Addr(s.parse().unwrap(), port)
    }

    #[test]
    fn hop_forms() {
        assert_eq!(Hop::parse(" 192.0.2.1 "), addr("192.0.2.1", None));
        assert_eq!(Hop::parse("192.0.2.1:8080"), addr("192.0.2.1", Some(8080)));
        assert_eq!(Hop::parse("2001:db8::1"), addr("2001:db8::1", None));
        assert_eq!(Hop::parse("[2001:db8::1]"), addr("2001:db8::1", None));
        assert_eq!(
            Hop::parse("[2001:db8::1]:443"),
            addr("2001:db8::1", Some(443))
        );
        assert_eq!(Hop::parse("::ffff:10.0.0.1"), addr("::ffff:10.0.0.1", None));
        for bad in [
            "",
            "unknown",
            "_hidden",
            "example.com",
            "1.2.3.4:",
            "1.2.3.4:99999",
            "1.2.3.4:+80",
            "[::1",
            "[::1]x",
            "[1.2.3.4]",
            "[::1]:",
            "1.2.3.4.5",
            "1.2.3.4 5.6.7.8",
            "::1:80:x",
            "1.2.3.4:80:90",
            "[::1]:123456",
        ] {
            assert_eq!(Hop::parse(bad), Hop::Opaque, "{bad:?}");
        }
    }

    fn allow(s: &str) -> AllowList {
        AllowList::parse(s).unwrap()
    }

    fn pick(hops: &[Hop], allow: &AllowList) -> Option<Pick> {
        super::pick(hops.iter().rev().copied(), allow)
    }

    fn client(p: Option<Pick>) -> Option<String> {
        p.and_then(|p| p.client).map(|(ip, _)| ip.to_string())
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let hops = [
            Hop::parse("6.6.6.6"), // whatever the client claimed
            Hop::parse("203.0.113.7"),
            Hop::parse("10.0.0.2"),
        ];
        let p = pick(&hops, &allow("10.0.0.0/8"));
        assert_eq!(client(p), Some("203.0.113.7".into()));
        assert_eq!(p.unwrap().from_right, 1);
        // Trusting the client's hop too moves on to what it claimed.
        assert_eq!(
            client(pick(&hops, &allow("10.0.0.0/8,203.0.113.7"))),
            Some("6.6.6.6".into())
        );
    }

    #[test]
    fn all_trusted_means_the_leftmost() {
        let hops = [Hop::parse("10.0.0.9"), Hop::parse("10.0.0.2")];
        assert_eq!(
            client(pick(&hops, &allow("10.0.0.0/8"))),
            Some("10.0.0.9".into())
        );
        assert_eq!(
            client(pick(&hops, &AllowList::any())),
            Some("10.0.0.9".into())
        );
        assert_eq!(pick(&[], &AllowList::any()), None);
    }

    #[test]
    fn an_opaque_hop_stops_the_walk_at_the_nearest_vouched_address() {
        let hops = [
            Hop::parse("6.6.6.6"),
            Hop::parse("garbage"),
            Hop::parse("10.0.0.3"),
        ];
        let p = pick(&hops, &allow("10.0.0.0/8")).unwrap();
        assert_eq!(p.from_right, 1);
        assert_eq!(client(Some(p)), Some("10.0.0.3".into()));
        let p = pick(&[Hop::parse("unknown")], &allow("10.0.0.0/8")).unwrap();
        assert_eq!((p.from_right, p.client), (0, None));
    }

    #[test]
    fn hosts() {
        for good in [
            "example.com",
            "example.com:8443",
            "a-b.c_d~e%41",
            "[2001:db8::1]",
            "[2001:db8::1]:8080",
            "192.0.2.1:80",
        ] {
            assert!(valid_host(good), "{good:?}");
        }
        for bad in [
            "",
            "evil.com/path",
            "a@b",
            "a b",
            "a,b",
            "example.com:",
            "example.com:x",
            "example.com:99999",
            "[::1",
            "[nothex]",
            "[::1]x",
            ":80",
            "a\r\nb",
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        assert_eq!(split_host("example.com:8443"), ("example.com", Some(8443)));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:80"), ("[::1]", Some(80)));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
    }
}
