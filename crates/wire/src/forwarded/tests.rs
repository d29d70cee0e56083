//! The policy over whole requests: trust, spoofing, chains, contradictions.

use super::*;

fn policy(allow: &str, headers: &str) -> Policy {
    Policy {
        allow: AllowList::parse(allow).unwrap(),
        headers: Headers::parse(headers).unwrap(),
        secure_scheme_headers: SchemeHeaders::parse(
            "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on",
        )
        .unwrap(),
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn resolve(p: &Policy, peer: Option<IpAddr>, headers: &[(&str, &str)]) -> Resolved {
    p.resolve(peer, headers.iter().map(|(n, v)| (*n, v.as_bytes())))
        .unwrap()
}

fn client(r: &Resolved) -> Option<String> {
    r.client.map(|(ip, _)| ip.to_string())
}

const LOCAL: &str = "127.0.0.1,::1";

#[test]
fn an_untrusted_peer_changes_nothing() {
    let p = policy(LOCAL, "x-forwarded-for,x-forwarded-host,forwarded");
    let spoof = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Ssl", "on"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "for=1.2.3.4;proto=https;host=evil.example"),
    ];
    assert_eq!(resolve(&p, ip("203.0.113.5"), &spoof), Resolved::default());
    // Not even a contradiction is an error from someone whose headers mean nothing.
    let r = p.resolve(
        ip("203.0.113.5"),
        [
            ("X-Forwarded-Proto", &b"https"[..]),
            ("X-Forwarded-Ssl", b"off"),
        ],
    );
    assert_eq!(r, Ok(Resolved::default()));
}

#[test]
fn a_trusted_proxy_names_the_client_scheme_and_host() {
    let p = policy(LOCAL, "x-forwarded-for,x-forwarded-host");
    let r = resolve(
        &p,
        ip("127.0.0.1"),
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("X-Forwarded-Host", "shop.example:8443"),
        ],
    );
    assert_eq!(client(&r), Some("203.0.113.7".into()));
    assert_eq!(r.scheme, Some(Scheme::Https));
    assert_eq!(r.host.as_deref(), Some("shop.example:8443"));
}

#[test]
fn a_client_prepending_its_own_x_forwarded_for_is_not_believed() {
    // nginx appends the address it saw ($proxy_add_x_forwarded_for).
    let p = policy(LOCAL, "x-forwarded-for");
    let r = resolve(
        &p,
        ip("127.0.0.1"),
        &[("X-Forwarded-For", "127.0.0.1, 10.9.9.9, 198.51.100.4")],
    );
    assert_eq!(client(&r), Some("198.51.100.4".into()));
    // The same lie in a second header field, joined in order, changes nothing.
    let r = resolve(
        &p,
        ip("127.0.0.1"),
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "198.51.100.4"),
        ],
    );
    assert_eq!(client(&r), Some("198.51.100.4".into()));
}

#[test]
fn multiple_trusted_hops_are_skipped() {
    let p = policy("127.0.0.1,10.0.0.0/8", "x-forwarded-for");
    let r = resolve(
        &p,
        ip("127.0.0.1"),
        &[(
            "X-Forwarded-For",
            "6.6.6.6, 198.51.100.4, 10.0.0.7, 10.0.0.8",
        )],
    );
    assert_eq!(client(&r), Some("198.51.100.4".into()));
    // With `*` everyone is a proxy: the leftmost address is all there is to go by.
    let r = resolve(
        &policy("*", "x-forwarded-for"),
        ip("203.0.113.1"),
        &[("X-Forwarded-For", "6.6.6.6, 198.51.100.4")],
    );
    assert_eq!(client(&r), Some("6.6.6.6".into()));
}

#[test]
fn malformed_entries_stop_at_the_nearest_known_hop() {
    let p = policy("127.0.0.1,10.0.0.0/8", "x-forwarded-for");
    for (xff, expected) in [
        ("garbage", None),
        ("6.6.6.6, garbage, 10.0.0.7", Some("10.0.0.7")),
        ("6.6.6.6,,10.0.0.7", Some("10.0.0.7")),
        ("unknown", None),
        ("", None),
        ("1.2.3.4 5.6.7.8", None),
        ("<script>", None),
    ] {
        let r = resolve(&p, ip("127.0.0.1"), &[("X-Forwarded-For", xff)]);
        assert_eq!(client(&r).as_deref(), expected, "{xff:?}");
    }
    let r = p
        .resolve(ip("127.0.0.1"), [("X-Forwarded-For", &b"\xff\xfe"[..])])
        .unwrap();
    assert_eq!(r.client, None);
}

#[test]
fn ipv6_and_ports() {
    let p = policy(LOCAL, "x-forwarded-for");
    let r = resolve(&p, ip("::1"), &[("X-Forwarded-For", "[2001:db8::7]:51000")]);
    assert_eq!(
        r.client,
        Some(("2001:db8::7".parse().unwrap(), Some(51000)))
    );
    let r = resolve(&p, ip("::1"), &[("X-Forwarded-For", "2001:db8::7")]);
    assert_eq!(r.client, Some(("2001:db8::7".parse().unwrap(), None)));
    // A dual-stack socket shows an IPv4 proxy as ::ffff:127.0.0.1: still trusted.
    let r = resolve(
        &p,
        ip("::ffff:127.0.0.1"),
        &[("X-Forwarded-For", "192.0.2.9:1234")],
    );
    assert_eq!(r.client, Some(("192.0.2.9".parse().unwrap(), Some(1234))));
}

#[test]
fn unix_socket_peers_are_trusted_unless_the_list_is_empty() {
    let headers = [
        ("X-Forwarded-For", "192.0.2.9"),
        ("X-Forwarded-Proto", "https"),
    ];
    let r = resolve(&policy(LOCAL, "x-forwarded-for"), None, &headers);
    assert_eq!(client(&r), Some("192.0.2.9".into()));
    assert_eq!(r.scheme, Some(Scheme::Https));
    let r = resolve(&policy("", "x-forwarded-for"), None, &headers);
    assert_eq!(r, Resolved::default());
}

#[test]
fn scheme_headers_follow_gunicorn() {
    let p = policy(LOCAL, "none");
    let peer = ip("127.0.0.1");
    let scheme = |h: &[(&str, &str)]| p.resolve(peer, h.iter().map(|(n, v)| (*n, v.as_bytes())));
    assert_eq!(scheme(&[]).unwrap().scheme, None);
    assert_eq!(
        scheme(&[("X-Forwarded-Proto", "https")]).unwrap().scheme,
        Some(Scheme::Https)
    );
    assert_eq!(
        scheme(&[("X-Forwarded-Proto", "http")]).unwrap().scheme,
        Some(Scheme::Http)
    );
    // Any other value means plain http, as in gunicorn (a list is not "https").
    assert_eq!(
        scheme(&[("X-Forwarded-Proto", "https, http")])
            .unwrap()
            .scheme,
        Some(Scheme::Http)
    );
    assert_eq!(
        scheme(&[("X-Forwarded-Ssl", " ON ")]).unwrap().scheme,
        Some(Scheme::Https)
    );
    assert_eq!(
        scheme(&[("X-Forwarded-Protocol", "ssl")]).unwrap().scheme,
        Some(Scheme::Https)
    );
    assert_eq!(
        scheme(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on")])
            .unwrap()
            .scheme,
        Some(Scheme::Https)
    );
    // A client adding X-Forwarded-Ssl behind a proxy that sets X-Forwarded-Proto: refused.
    assert_eq!(
        scheme(&[("X-Forwarded-Proto", "http"), ("X-Forwarded-Ssl", "on")]),
        Err(ResolveError::ContradictoryScheme)
    );
    assert_eq!(
        scheme(&[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Proto", "http")
        ]),
        Err(ResolveError::ContradictoryScheme)
    );
    // Underscores never pose as dashes.
    assert_eq!(
        scheme(&[("X_Forwarded_Proto", "https")]).unwrap().scheme,
        None
    );
    // No scheme headers configured: nothing changes the scheme.
    let none = Policy {
        secure_scheme_headers: SchemeHeaders::parse("").unwrap(),
        ..p.clone()
    };
    let r = none.resolve(peer, [("X-Forwarded-Proto", &b"https"[..])]);
    assert_eq!(r.unwrap().scheme, None);
}

#[test]
fn only_the_chosen_headers_are_believed() {
    let headers = [
        ("X-Forwarded-For", "192.0.2.9"),
        ("X-Forwarded-Host", "shop.example"),
        ("Forwarded", "for=198.51.100.1;host=other.example"),
    ];
    let r = resolve(&policy(LOCAL, "x-forwarded-for"), ip("127.0.0.1"), &headers);
    assert_eq!(client(&r), Some("192.0.2.9".into()));
    assert_eq!(r.host, None);
    let r = resolve(&policy(LOCAL, "none"), ip("127.0.0.1"), &headers);
    assert_eq!((r.client, r.host), (None, None));
    let r = resolve(
        &policy(LOCAL, "x-forwarded-host"),
        ip("127.0.0.1"),
        &headers,
    );
    assert_eq!((r.client, r.host.as_deref()), (None, Some("shop.example")));
}

#[test]
fn x_forwarded_host_takes_the_last_well_formed_value() {
    let p = policy(LOCAL, "x-forwarded-host");
    let host = |v: &str| resolve(&p, ip("127.0.0.1"), &[("X-Forwarded-Host", v)]).host;
    assert_eq!(host("a.example, b.example").as_deref(), Some("b.example"));
    assert_eq!(
        host("[2001:db8::1]:8080").as_deref(),
        Some("[2001:db8::1]:8080")
    );
    for bad in ["evil.example/x", "a b", "", "x:99999", "u@h"] {
        assert_eq!(host(bad), None, "{bad:?}");
    }
}

#[test]
fn forwarded_walks_its_elements_and_takes_proto_and_host_from_the_clients() {
    let p = policy("127.0.0.1,10.0.0.0/8", "forwarded,x-forwarded-for");
    let r = resolve(
        &p,
        ip("127.0.0.1"),
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            (
                "Forwarded",
                r#"for=6.6.6.6;proto=http, for="[2001:db8:cafe::17]:4711";proto=https;host="shop.example""#,
            ),
            ("Forwarded", "for=10.0.0.5;proto=http;host=internal"),
        ],
    );
    assert_eq!(
        r.client,
        Some(("2001:db8:cafe::17".parse().unwrap(), Some(4711)))
    );
    assert_eq!(r.scheme, Some(Scheme::Https));
    assert_eq!(r.host.as_deref(), Some("shop.example"));
}

#[test]
fn forwarded_edge_cases() {
    let p = policy(LOCAL, "forwarded,x-forwarded-for");
    let peer = ip("127.0.0.1");
    // Obfuscated client: its address stays unknown (the peer), its proto still counts.
    let r = resolve(&p, peer, &[("Forwarded", "for=_hidden;proto=https")]);
    assert_eq!((r.client, r.scheme), (None, Some(Scheme::Https)));
    // Unreadable Forwarded: ignored, X-Forwarded-For used instead.
    let r = resolve(
        &p,
        peer,
        &[
            ("Forwarded", "for=\"1.2.3.4"),
            ("X-Forwarded-For", "192.0.2.1"),
        ],
    );
    assert_eq!(client(&r), Some("192.0.2.1".into()));
    // Unquoted IPv6 with a port is not valid syntax there: ignored.
    let r = resolve(&p, peer, &[("Forwarded", "for=[::1]:80")]);
    assert_eq!(r, Resolved::default());
    // proto= that disagrees with X-Forwarded-Proto: contradiction.
    let r = p.resolve(
        peer,
        [
            ("Forwarded", &b"for=192.0.2.1;proto=https"[..]),
            ("X-Forwarded-Proto", b"http"),
        ],
    );
    assert_eq!(r, Err(ResolveError::ContradictoryScheme));
    // A bad host= is dropped, the rest kept.
    let r = resolve(&p, peer, &[("Forwarded", r#"for=192.0.2.1;host="a/b""#)]);
    assert_eq!((client(&r), r.host), (Some("192.0.2.1".into()), None));
}

#[test]
fn settings_text_round_trips() {
    assert_eq!(
        Headers::parse("X-Forwarded-For, forwarded")
            .unwrap()
            .to_string(),
        "x-forwarded-for,forwarded"
    );
    assert_eq!(Headers::parse("none").unwrap().to_string(), "none");
    assert_eq!(
        Headers::parse("x-real-ip"),
        Err(UnknownHeader("x-real-ip".into()))
    );
    let s = SchemeHeaders::parse("X-Forwarded-Proto=https, X-Forwarded-Ssl=on").unwrap();
    assert_eq!(s.to_string(), "X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on");
    for bad in ["X-Forwarded-Proto", "=https", "X Y=1", "X-A="] {
        assert!(SchemeHeaders::parse(bad).is_err(), "{bad:?}");
    }
}
