//! Property tests: no input panics or loops the engine, and however valid frames are cut
//! into reads, they decode to the same events.

use proptest::prelude::*;

use crate::testutil::{frame, ClientDeflate};
use crate::{Config, Connection, Deflate, Event, Message};

fn deflate() -> Deflate {
    Deflate {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        announce_server_max_window_bits: false,
        level: 1,
        min_size: 0,
    }
}

/// Feeds `bytes` in pieces of the given sizes (cycled), collecting every event and error.
fn decode(c: &mut Connection, bytes: &[u8], sizes: &[usize]) -> Vec<Result<Event, u16>> {
    let mut got = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().copied().filter(|n| *n > 0).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        c.receive(&rest[..n]);
        rest = &rest[n..];
        // Each call consumes input or returns None: the bound catches a loop.
        let mut drained = false;
        for _ in 0..=bytes.len() + 2 {
            match c.next_event() {
                Ok(Some(e)) => got.push(Ok(e)),
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(e) => got.push(Err(e.code())),
            }
        }
        assert!(drained, "next_event kept returning without consuming input");
        let mut out = Vec::new();
        c.take_output(&mut out);
        if c.send(&Message::Binary(vec![1, 2, 3])).is_ok() {
            c.send_ping(b"p");
        }
    }
    got
}

/// One unit a client sends.
#[derive(Debug, Clone)]
enum Item {
    Message {
        text: bool,
        body: Vec<u8>,
        compress: bool,
        /// Where the (possibly compressed) payload is cut into frames.
        cuts: Vec<usize>,
        /// A ping between the first and second fragment.
        ping: Option<Vec<u8>>,
    },
    Ping(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    let body = prop_oneof![
        ".{0,100}".prop_map(|s: String| (true, s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (false, b)),
        (0usize..3000).prop_map(|n| (true, "ab".repeat(n).into_bytes())),
    ];
    let control = proptest::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        (
            body,
            any::<bool>(),
            proptest::collection::vec(0usize..400, 0..4),
            proptest::option::of(control.clone())
        )
            .prop_map(|((text, body), compress, cuts, ping)| Item::Message {
                text,
                body,
                compress,
                cuts,
                ping
            }),
        control.prop_map(Item::Ping),
    ]
}

/// The client's bytes for `items` and the events they must produce.
fn encode(items: &[Item]) -> (Vec<u8>, Vec<Result<Event, u16>>) {
    let mut client = ClientDeflate::new();
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Ping(p) => {
                bytes.extend(frame(true, false, 9, p));
                expected.push(Ok(Event::Ping(p.clone())));
            }
            Item::Message {
                text,
                body,
                compress,
                cuts,
                ping,
            } => {
                let payload = if *compress {
                    client.compress(body)
                } else {
                    body.clone()
                };
                let mut cuts: Vec<usize> = cuts.iter().map(|c| (*c).min(payload.len())).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut start = 0;
                for (i, end) in cuts.iter().enumerate() {
                    let last = i == cuts.len() - 1;
                    let opcode = if i > 0 {
                        0
                    } else if *text {
                        1
                    } else {
                        2
                    };
                    bytes.extend(frame(
                        last,
                        *compress && i == 0,
                        opcode,
                        &payload[start..*end],
                    ));
                    start = *end;
                    if let (0, false, Some(p)) = (i, last, ping) {
                        bytes.extend(frame(true, false, 9, p));
                        expected.push(Ok(Event::Ping(p.clone())));
                    }
                }
                expected.push(Ok(Event::Message(if *text {
                    Message::Text(String::from_utf8(body.clone()).unwrap())
                } else {
                    Message::Binary(body.clone())
                })));
            }
        }
    }
    (bytes, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..200, 0..8),
        with_deflate in any::<bool>(),
        small_limit in any::<bool>(),
    ) {
        let config = Config {
            max_message_size: if small_limit { 100 } else { 1 << 20 },
            ..Config::default()
        };
        let mut c = Connection::new(config, with_deflate.then(deflate));
        let got = decode(&mut c, &bytes, &sizes);
        prop_assert!(got.iter().filter(|e| e.is_err()).count() <= 1);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        items in proptest::collection::vec(item(), 1..4),
        tail in proptest::collection::vec(any::<u8>(), 0..500),
    ) {
        let (mut bytes, _) = encode(&items);
        bytes.extend(tail);
        let mut c = Connection::new(Config::default(), Some(deflate()));
        decode(&mut c, &bytes, &[7, 300, 1]);
    }

    #[test]
    fn valid_frames_decode_the_same_however_they_are_cut(
        items in proptest::collection::vec(item(), 1..6),
        sizes in proptest::collection::vec(1usize..500, 1..8),
    ) {
        let (bytes, expected) = encode(&items);
        let mut whole = Connection::new(Config::default(), Some(deflate()));
        prop_assert_eq!(&decode(&mut whole, &bytes, &[]), &expected);
        let mut pieces = Connection::new(Config::default(), Some(deflate()));
        prop_assert_eq!(&decode(&mut pieces, &bytes, &sizes), &expected);
    }
}
