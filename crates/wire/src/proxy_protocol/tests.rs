use super::*;

fn done(buf: &[u8]) -> Header {
    match parse(buf, Versions::BOTH) {
        Parsed::Done(h) => h,
        other => panic!("{other:?}"),
    }
}

fn err(buf: &[u8]) -> Error {
    match parse(buf, Versions::BOTH) {
        Parsed::Error(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn v1_tcp4_tcp6_unknown() {
    let h = done(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n");
    assert_eq!(h.version, Version::V1);
    assert_eq!(h.src, addr("192.0.2.1:56324"));
    assert_eq!(h.dst, addr("198.51.100.2:443"));
    assert_eq!(h.consumed, 45);
    let h = done(b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n");
    assert_eq!(h.src, addr("[2001:db8::1]:65535"));
    assert_eq!(h.dst, addr("[2001:db8::2]:0"));
    let h = done(b"PROXY UNKNOWN ffff:f...f:ffff 65535 65535\r\n");
    assert_eq!((h.src, h.dst, h.command), (None, None, Command::Proxy));
    assert_eq!(done(b"PROXY UNKNOWN\r\n").consumed, 15);
}

#[test]
fn v1_needs_more_until_the_line_ends() {
    let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    for cut in 0..line.len() {
        assert_eq!(
            parse(&line[..cut], Versions::BOTH),
            Parsed::NeedMore,
            "{cut}"
        );
    }
}

#[test]
fn v1_malformed() {
    for bad in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        b"PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 080 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",
        b"PROXY TCP4  192.0.2.1 198.51.100.2 1 443\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",
        b"PROXY TCP4 192.0.2.1\n",
        b"PROXY \x00",
    ] {
        assert!(
            matches!(err(bad), Error::V1Syntax(_)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = [&b"PROXY UNKNOWN "[..], &[b'x'; 100]].concat();
    assert_eq!(err(&long), Error::V1TooLong);
    assert_eq!(err(b"GET / HTTP/1.1\r\n"), Error::NotProxy);
    assert_eq!(err(b"PROXI"), Error::NotProxy);
    assert_eq!(err(b"\r\n\r\n\0\r\nQUIX"), Error::NotProxy);
}

fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn v2_ipv4_with_tlvs() {
    let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2];
    body.extend_from_slice(&56324u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    body.extend_from_slice(&[0x02, 0, 3, b'a', b'b', b'c']); // PP2_TYPE_AUTHORITY
    body.extend_from_slice(&[0x04, 0, 0]); // PP2_TYPE_NOOP, empty
    let mut buf = v2(1, 0x11, &body);
    let len = buf.len();
    buf.extend_from_slice(b"GET /");
    let h = done(&buf);
    assert_eq!((h.version, h.command), (Version::V2, Command::Proxy));
    assert_eq!(h.src, addr("192.0.2.1:56324"));
    assert_eq!(h.dst, addr("198.51.100.2:443"));
    assert_eq!(h.consumed, len);
    assert_eq!(
        h.tlvs,
        vec![
            Tlv {
                kind: 2,
                value: b"abc".to_vec()
            },
            Tlv {
                kind: 4,
                value: vec![]
            }
        ]
    );
    for cut in 0..len {
        assert_eq!(
            parse(&buf[..cut], Versions::BOTH),
            Parsed::NeedMore,
            "{cut}"
        );
    }
}

#[test]
fn v2_ipv6_unix_local_unspec() {
    let mut body = Vec::new();
    body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    body.extend_from_slice(&[0x1f, 0x90, 0x01, 0xbb]);
    let h = done(&v2(1, 0x21, &body));
    assert_eq!(h.src, addr("[2001:db8::1]:8080"));
    assert_eq!(h.dst, addr("[2001:db8::2]:443"));
    let h = done(&v2(1, 0x31, &[0; 216]));
    assert_eq!((h.src, h.dst), (None, None));
    // LOCAL: whatever follows is ignored, even an unknown family.
    let h = done(&v2(0, 0x00, &[]));
    assert_eq!((h.command, h.src), (Command::Local, None));
    assert_eq!(done(&v2(0, 0x71, &[1, 2, 3])).consumed, 19);
    let h = done(&v2(1, 0x00, &[]));
    assert_eq!((h.command, h.src), (Command::Proxy, None));
}

#[test]
fn v2_malformed() {
    let mut bad_version = v2(1, 0x11, &[0; 12]);
    bad_version[12] = 0x11;
    assert_eq!(err(&bad_version), Error::V2Version(1));
    assert_eq!(err(&v2(2, 0x11, &[0; 12])), Error::V2Command(2));
    assert_eq!(err(&v2(1, 0x41, &[0; 12])), Error::V2Family(0x41));
    assert_eq!(err(&v2(1, 0x13, &[0; 12])), Error::V2Family(0x13));
    assert_eq!(err(&v2(1, 0x11, &[0; 11])), Error::V2AddressTooShort);
    assert_eq!(err(&v2(1, 0x21, &[0; 35])), Error::V2AddressTooShort);
    let mut tlv_past_end = vec![0; 12];
    tlv_past_end.extend_from_slice(&[0x02, 0, 9, b'a']);
    assert_eq!(err(&v2(1, 0x11, &tlv_past_end)), Error::V2Tlv);
    let mut tlv_cut = vec![0; 12];
    tlv_cut.extend_from_slice(&[0x02, 0]);
    assert_eq!(err(&v2(1, 0x11, &tlv_cut)), Error::V2Tlv);
}

#[test]
fn versions_not_accepted() {
    let v1_only = Versions {
        v1: true,
        v2: false,
    };
    let v2_only = Versions {
        v1: false,
        v2: true,
    };
    assert_eq!(
        parse(&v2(0, 0, &[]), v1_only),
        Parsed::Error(Error::NotAccepted(Version::V2))
    );
    assert_eq!(
        parse(b"PROXY UNKNOWN\r\n", v2_only),
        Parsed::Error(Error::NotAccepted(Version::V1))
    );
}
