//! Properties of the wire parsers over generated input: arbitrary bytes never panic, a
//! prefix of any input answers `NeedMore` or exactly what the whole input gets, and valid
//! items parse to what was encoded however the bytes are split.

use ironhorse_wire::proxy_protocol::{self, Versions, V2_SIGNATURE};
use ironhorse_wire::{uwsgi, Parsed};
use proptest::prelude::*;

/// Feeds `buf` in the chunks `cuts` makes, as a session would (parsing what it has after each
/// read), and returns the first answer that is not `NeedMore` (or `NeedMore`).
fn fed<T, E>(buf: &[u8], cuts: &[usize], parse: impl Fn(&[u8]) -> Parsed<T, E>) -> Parsed<T, E> {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (buf.len() + 1)).collect();
    ends.push(buf.len());
    ends.sort_unstable();
    for end in ends {
        match parse(&buf[..end]) {
            Parsed::NeedMore => continue,
            answer => return answer,
        }
    }
    Parsed::NeedMore
}

/// Every prefix answers `NeedMore` or the whole input's answer (a `Done` once it is all in).
fn prefixes_agree<T: PartialEq + std::fmt::Debug, E: PartialEq + std::fmt::Debug>(
    buf: &[u8],
    parse: impl Fn(&[u8]) -> Parsed<T, E>,
    consumed: impl Fn(&T) -> usize,
) -> Result<(), TestCaseError> {
    let whole = parse(buf);
    for end in 0..buf.len() {
        let part = parse(&buf[..end]);
        match (&part, &whole) {
            (Parsed::NeedMore, _) => {}
            (Parsed::Done(p), Parsed::Done(w)) => {
                prop_assert!(consumed(w) <= end, "done early at {end}");
                prop_assert_eq!(p, w);
            }
            _ => prop_assert_eq!(&part, &whole, "prefix of {} bytes", end),
        }
    }
    Ok(())
}

fn proxy(buf: &[u8]) -> Parsed<proxy_protocol::Header, proxy_protocol::Error> {
    proxy_protocol::parse(buf, Versions::BOTH)
}

fn packet(buf: &[u8]) -> Parsed<uwsgi::Packet, uwsgi::Error> {
    uwsgi::parse(buf, &uwsgi::Limits::default())
}

/// Bytes that start like one of the formats half the time, so the parsers get past their
/// first byte.
fn noisy() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(b"PROXY ".to_vec()),
        Just(b"PROXY TCP4 ".to_vec()),
        Just(V2_SIGNATURE.to_vec()),
        Just([&V2_SIGNATURE[..], &[0x21, 0x11]].concat()),
        Just(vec![0u8]),
    ];
    (prefix, proptest::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(p, rest)| [p, rest].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_prefixes_agree(buf in noisy()) {
        prefixes_agree(&buf, proxy, |h| h.consumed)?;
        prefixes_agree(&buf, packet, |p| p.consumed)?;
    }

    #[test]
    fn v1_headers_parse_however_split(
        v6 in any::<bool>(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        ports in any::<(u16, u16)>(),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let (s, d): (std::net::IpAddr, std::net::IpAddr) = if v6 {
            (src.into(), dst.into())
        } else {
            (<[u8; 4]>::try_from(&src[..4]).unwrap().into(), <[u8; 4]>::try_from(&dst[..4]).unwrap().into())
        };
        let line = format!("PROXY {} {s} {d} {} {}\r\n", if v6 { "TCP6" } else { "TCP4" }, ports.0, ports.1);
        let buf = [line.as_bytes(), &tail].concat();
        let Parsed::Done(h) = fed(&buf, &cuts, proxy) else { panic!("{line:?}") };
        prop_assert_eq!(h.src, Some(std::net::SocketAddr::new(s, ports.0)));
        prop_assert_eq!(h.dst, Some(std::net::SocketAddr::new(d, ports.1)));
        prop_assert_eq!(h.consumed, line.len());
    }

    #[test]
    fn v2_headers_parse_however_split(
        src in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        tlvs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut body = src.to_vec();
        body.extend_from_slice(&[10, 0, 0, 1]);
        body.extend_from_slice(&ports.0.to_be_bytes());
        body.extend_from_slice(&ports.1.to_be_bytes());
        for (kind, value) in &tlvs {
            body.push(*kind);
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
        }
        let mut buf = V2_SIGNATURE.to_vec();
        buf.extend_from_slice(&[0x21, 0x11]);
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(&body);
        let len = buf.len();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let Parsed::Done(h) = fed(&buf, &cuts, proxy) else { panic!() };
        prop_assert_eq!(h.src, Some(std::net::SocketAddr::from((src, ports.0))));
        prop_assert_eq!(h.consumed, len);
        let got: Vec<(u8, Vec<u8>)> = h.tlvs.into_iter().map(|t| (t.kind, t.value)).collect();
        prop_assert_eq!(got, tlvs);
    }

    #[test]
    fn uwsgi_packets_parse_however_split(
        vars in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..30), proptest::collection::vec(any::<u8>(), 0..60)),
            0..40),
        modifier2 in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..50),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let refs: Vec<(&[u8], &[u8])> = vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let encoded = uwsgi::encode(modifier2, &refs).unwrap();
        let buf = [encoded.as_slice(), &body].concat();
        let Parsed::Done(p) = fed(&buf, &cuts, packet) else { panic!() };
        prop_assert_eq!(p.consumed, encoded.len());
        prop_assert_eq!(p.modifier2, modifier2);
        prop_assert_eq!(p.vars, vars);
    }

    #[test]
    fn corrupted_uwsgi_packets_are_refused_or_parsed_never_panic(
        vars in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..10), proptest::collection::vec(any::<u8>(), 0..10)), 1..10),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let refs: Vec<(&[u8], &[u8])> = vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let mut buf = uwsgi::encode(0, &refs).unwrap();
        for (at, byte) in flips {
            let at = 1 + at % (buf.len() - 1); // keep modifier1 = 0: exercise the var block
            buf[at] = byte;
        }
        prefixes_agree(&buf, packet, |p| p.consumed)?;
    }
}
