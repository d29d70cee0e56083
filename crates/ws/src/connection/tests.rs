use super::*;
use crate::testutil::*;
use crate::{Config, Deflate, Event, Message, ProtocolError, State};

fn conn() -> Connection {
    Connection::new(Config::default(), None)
}

fn small(max: usize) -> Connection {
    let config = Config {
        max_message_size: max,
        max_frame_size: max,
        ..Config::default()
    };
    Connection::new(config, None)
}

/// Feeds `bytes` and pulls every event; the first error (if any) is returned beside them.
fn feed(c: &mut Connection, bytes: &[u8]) -> (Vec<Event>, Option<ProtocolError>) {
    c.receive(bytes);
    let mut events = Vec::new();
    let mut error = None;
    loop {
        match c.next_event() {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, error),
            Err(e) => {
                assert!(error.is_none(), "an error is reported once");
                error = Some(e);
            }
        }
    }
}

fn output(c: &mut Connection) -> Vec<ServerFrame> {
    let mut out = Vec::new();
    c.take_output(&mut out);
    server_frames(&out)
}

fn text_event(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

fn close_frame(code: u16) -> ServerFrame {
    (true, false, 8, code.to_be_bytes().to_vec())
}

/// Checks that `bytes` fail the connection with `error` and the matching close frame.
fn assert_fails(mut c: Connection, bytes: &[u8], error: ProtocolError) {
    let (events, err) = feed(&mut c, bytes);
    assert_eq!(err, Some(error), "events before: {events:?}");
    let frames = output(&mut c);
    let close = frames.last().expect("a close frame");
    assert_eq!(
        (close.2, &close.3[..2]),
        (8, &error.code().to_be_bytes()[..])
    );
    // The peer's close (even an invalid one) or a length we cannot skip ends reading.
    let ends_reading = matches!(
        error,
        ProtocolError::BadLength
            | ProtocolError::ShortClosePayload
            | ProtocolError::BadCloseCode(_)
            | ProtocolError::InvalidCloseReason
    );
    let state = if ends_reading {
        State::Closed
    } else {
        State::Closing
    };
    assert_eq!(c.state(), state, "{error:?}");
    assert_eq!(c.send(&Message::Text("late".into())), Err(StateError));
}

#[test]
fn a_connection_can_move_to_another_thread() {
    fn is_send<T: Send + 'static>(_: &T) {}
    let c = deflate_conn(true);
    is_send(&c);
    assert!(format!("{c:?}").contains("Open"));
}

#[test]
fn text_and_binary_messages() {
    let mut c = conn();
    let mut bytes = text("héllo");
    bytes.extend(frame(true, false, 2, &[0, 1, 2, 255]));
    bytes.extend(text(""));
    bytes.extend(frame(true, false, 2, &vec![9u8; 70_000])); // 64-bit length
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            text_event("héllo"),
            Event::Message(Message::Binary(vec![0, 1, 2, 255])),
            text_event(""),
            Event::Message(Message::Binary(vec![9u8; 70_000])),
        ]
    );
    assert!(!c.has_output());
    assert_eq!(c.state(), State::Open);
}

#[test]
fn fragments_with_interleaved_control_frames() {
    let mut c = conn();
    let mut bytes = frame(false, false, 1, "frag".as_bytes());
    bytes.extend(frame(true, false, 9, b"ping!"));
    bytes.extend(frame(false, false, 0, "men".as_bytes()));
    bytes.extend(frame(true, false, 10, b"pong"));
    bytes.extend(frame(true, false, 0, "ted €".as_bytes()));
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            Event::Ping(b"ping!".to_vec()),
            Event::Pong(b"pong".to_vec()),
            text_event("fragmented €"),
        ]
    );
    // The ping was answered by the engine.
    assert_eq!(output(&mut c), vec![(true, false, 10, b"ping!".to_vec())]);
}

#[test]
fn a_character_split_across_fragments_is_fine() {
    let mut c = conn();
    let euro = "€".as_bytes();
    let mut bytes = frame(false, false, 1, &euro[..1]);
    bytes.extend(frame(false, false, 0, &euro[1..2]));
    bytes.extend(frame(true, false, 0, &euro[2..]));
    assert_eq!(feed(&mut c, &bytes), (vec![text_event("€")], None));
}

#[test]
fn sending_frames_are_unmasked_and_sized() {
    let mut c = conn();
    c.send(&Message::Text("hi".into())).unwrap();
    c.send(&Message::Binary(vec![1; 300])).unwrap();
    c.send(&Message::Binary(vec![2; 70_000])).unwrap();
    c.send_ping(&[7; 200]);
    assert!(c.buffered_output() > 70_300);
    assert_eq!(
        output(&mut c),
        vec![
            (true, false, 1, b"hi".to_vec()),
            (true, false, 2, vec![1; 300]),
            (true, false, 2, vec![2; 70_000]),
            (true, false, 9, vec![7; 125]),
        ]
    );
    assert_eq!(c.buffered_output(), 0);
}

#[test]
fn peer_close_is_echoed_once_and_ends_everything() {
    let mut c = conn();
    let mut bytes = frame(true, false, 8, &close_payload(1001, "going"));
    bytes.extend(text("after close"));
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Event::Close {
            code: Some(1001),
            reason: "going".into()
        }]
    );
    assert_eq!(output(&mut c), vec![close_frame(1001)]);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.send(&Message::Text("x".into())), Err(StateError));
    c.send_ping(b"x");
    c.close(1000, "again");
    assert!(!c.has_output());
    assert_eq!(feed(&mut c, &text("more")), (vec![], None));
}

#[test]
fn empty_peer_close_is_answered_with_1000() {
    let mut c = conn();
    let (events, _) = feed(&mut c, &frame(true, false, 8, b""));
    assert_eq!(
        events,
        vec![Event::Close {
            code: None,
            reason: String::new()
        }]
    );
    assert_eq!(output(&mut c), vec![close_frame(1000)]);
}

#[test]
fn server_initiated_close() {
    let mut c = conn();
    c.close(4000, "bye now");
    assert_eq!(c.state(), State::Closing);
    assert_eq!(
        output(&mut c),
        vec![(true, false, 8, close_payload(4000, "bye now"))]
    );
    // Messages still in flight from the peer are delivered; its pings are not answered.
    let mut bytes = text("in flight");
    bytes.extend(frame(true, false, 9, b"p"));
    bytes.extend(frame(true, false, 8, &close_payload(4000, "")));
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!(err, None);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], text_event("in flight"));
    assert!(!c.has_output(), "no pong and no second close after ours");
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn close_codes_that_may_not_be_sent_are_mapped() {
    let mut c = conn();
    c.close(1006, "");
    assert_eq!(output(&mut c), vec![close_frame(1000)]);
    let mut c = conn();
    c.close(1005, "");
    assert_eq!(output(&mut c), vec![(true, false, 8, vec![])]);
}

#[test]
fn framing_errors_are_1002() {
    let unmasked = [0x81, 0x02, b'h', b'i'];
    assert_fails(conn(), &unmasked, ProtocolError::Unmasked);
    assert_fails(conn(), &raw_frame(0xA1, b"x"), ProtocolError::ReservedBits); // RSV2
    assert_fails(conn(), &raw_frame(0x91, b"x"), ProtocolError::ReservedBits); // RSV3
    assert_fails(
        conn(),
        &frame(true, true, 1, b"x"),
        ProtocolError::ReservedBits,
    ); // no deflate
    assert_fails(
        conn(),
        &frame(true, false, 3, b"x"),
        ProtocolError::UnknownOpcode(3),
    );
    assert_fails(
        conn(),
        &frame(true, false, 0xB, b""),
        ProtocolError::UnknownOpcode(0xB),
    );
    assert_fails(
        conn(),
        &frame(true, false, 9, &[0; 126]),
        ProtocolError::ControlTooLong,
    );
    assert_fails(
        conn(),
        &frame(false, false, 9, b""),
        ProtocolError::FragmentedControl,
    );
    assert_fails(
        conn(),
        &frame(true, false, 0, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
    let mut two_starts = frame(false, false, 1, b"a");
    two_starts.extend(frame(true, false, 2, b"b"));
    assert_fails(conn(), &two_starts, ProtocolError::ExpectedContinuation);
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_fails(conn(), &huge, ProtocolError::BadLength);
}

#[test]
fn close_payload_errors() {
    assert_fails(
        conn(),
        &frame(true, false, 8, &[3]),
        ProtocolError::ShortClosePayload,
    );
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let bytes = frame(true, false, 8, &close_payload(code, ""));
        assert_fails(conn(), &bytes, ProtocolError::BadCloseCode(code));
    }
    let mut bad_reason = close_payload(1000, "");
    bad_reason.push(0xFF);
    assert_fails(
        conn(),
        &frame(true, false, 8, &bad_reason),
        ProtocolError::InvalidCloseReason,
    );
    for code in [1000, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
        let mut c = conn();
        let (events, err) = feed(&mut c, &frame(true, false, 8, &close_payload(code, "")));
        assert_eq!((events.len(), err), (1, None), "{code}");
    }
}

#[test]
fn invalid_utf8_fails_on_the_first_bad_fragment() {
    // The message is not finished: the bad byte alone fails it.
    assert_fails(
        conn(),
        &frame(false, false, 1, b"ok \xC0\xAF"),
        ProtocolError::InvalidUtf8,
    );
    // A character cut at the message's end.
    let mut cut = frame(false, false, 1, b"ok");
    cut.extend(frame(true, false, 0, b"\xE2\x82"));
    assert_fails(conn(), &cut, ProtocolError::InvalidUtf8);
    // Binary messages carry anything.
    let mut c = conn();
    let (events, err) = feed(&mut c, &frame(true, false, 2, b"\xC0\xAF"));
    assert_eq!((events.len(), err), (1, None));
}

#[test]
fn invalid_utf8_fails_before_the_frame_is_complete() {
    let mut c = conn();
    let bytes = frame(true, false, 1, b"abc\xFFdefghijklmnop");
    // Header (6 bytes) and the first 4 payload bytes only.
    let (_, err) = feed(&mut c, &bytes[..10]);
    assert_eq!(err, Some(ProtocolError::InvalidUtf8));
}

#[test]
fn oversized_frames_fail_from_the_header() {
    let mut c = small(1000);
    // Only the header of a 1 GiB frame: refused before any payload arrives.
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let (_, err) = feed(&mut c, &header);
    assert_eq!(err, Some(ProtocolError::MessageTooBig));
    assert_eq!(output(&mut c)[0].3[..2], 1009u16.to_be_bytes());
    // Fragments that add up past the limit.
    let mut bytes = frame(false, false, 2, &[0; 600]);
    bytes.extend(frame(true, false, 0, &[0; 600]));
    assert_fails(small(1000), &bytes, ProtocolError::MessageTooBig);
    // Exactly the limit is fine.
    let mut c = small(1000);
    let (events, err) = feed(&mut c, &frame(true, false, 2, &[0; 1000]));
    assert_eq!((events.len(), err), (1, None));
}

#[test]
fn after_an_error_only_the_peers_close_matters() {
    let mut c = conn();
    let (_, err) = feed(&mut c, &frame(true, false, 0, b"stray"));
    assert_eq!(err, Some(ProtocolError::UnexpectedContinuation));
    let _ = output(&mut c);
    let mut bytes = text("ignored");
    bytes.extend(frame(true, false, 9, b"ignored"));
    bytes.extend(frame(true, false, 8, &close_payload(1002, "")));
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!((events, err), (vec![], None));
    assert!(!c.has_output());
    assert_eq!(c.state(), State::Closed);
}

fn deflate(takeover: bool) -> Deflate {
    Deflate {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_max_window_bits: 15,
        announce_server_max_window_bits: false,
        level: 6,
        min_size: 16,
    }
}

fn deflate_conn(takeover: bool) -> Connection {
    Connection::new(Config::default(), Some(deflate(takeover)))
}

#[test]
fn compressed_messages_in_one_frame_and_in_fragments() {
    let mut c = deflate_conn(true);
    let mut client = ClientDeflate::new();
    let msg = "compress me ".repeat(50);
    let mut bytes = frame(true, true, 1, &client.compress(msg.as_bytes()));
    // Same text again: with context takeover the client refers back to the last message.
    let again = client.compress(msg.as_bytes());
    assert!(again.len() < 20, "{}", again.len());
    let (a, b) = again.split_at(again.len() / 2);
    bytes.extend(frame(false, true, 1, a));
    bytes.extend(frame(true, false, 9, b"mid"));
    bytes.extend(frame(true, false, 0, b));
    // An uncompressed message on the same connection.
    bytes.extend(text("plain"));
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            text_event(&msg),
            Event::Ping(b"mid".to_vec()),
            text_event(&msg),
            text_event("plain")
        ]
    );
}

#[test]
fn sent_messages_are_compressed_when_it_pays() {
    let mut c = deflate_conn(true);
    let msg = "x".repeat(10_000);
    c.send(&Message::Text(msg.clone())).unwrap();
    c.send(&Message::Text("short".into())).unwrap();
    let frames = output(&mut c);
    assert_eq!(frames.len(), 2);
    assert!(frames[0].1, "RSV1 on the compressed message");
    assert!(frames[0].3.len() < 200);
    let mut inflater = crate::deflate::Inflater::new(&deflate(true));
    let mut out = Vec::new();
    inflater.inflate(&frames[0].3, &mut out, 1 << 20).unwrap();
    inflater.finish(&mut out, 1 << 20).unwrap();
    assert_eq!(out, msg.as_bytes());
    assert_eq!(frames[1], (true, false, 1, b"short".to_vec()));
}

#[test]
fn deflate_errors() {
    // RSV1 on a continuation or a control frame.
    let mut bytes = frame(false, true, 2, &ClientDeflate::new().compress(b"abc"));
    bytes.extend(frame(true, true, 0, b""));
    assert_fails(deflate_conn(true), &bytes, ProtocolError::ReservedBits);
    assert_fails(
        deflate_conn(true),
        &frame(true, true, 9, b""),
        ProtocolError::ReservedBits,
    );
    // Not deflate data.
    assert_fails(
        deflate_conn(true),
        &frame(true, true, 2, &[0xFF; 32]),
        ProtocolError::BadCompressedData,
    );
    // A bomb: 8 MiB of zeros in a few KiB, against a 1 MiB limit.
    let bomb = ClientDeflate::new().compress(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < 20_000);
    let config = Config {
        max_message_size: 1 << 20,
        ..Config::default()
    };
    let c = Connection::new(config, Some(deflate(true)));
    assert_fails(
        c,
        &frame(true, true, 2, &bomb),
        ProtocolError::MessageTooBig,
    );
    // Compressed text that inflates to invalid UTF-8.
    let bad = ClientDeflate::new().compress(b"abc\xFF");
    assert_fails(
        deflate_conn(true),
        &frame(true, true, 1, &bad),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn no_context_takeover_decompresses_each_message_alone() {
    let mut c = deflate_conn(false);
    let msg = "independent ".repeat(20);
    let mut bytes = Vec::new();
    for _ in 0..3 {
        // A fresh client compressor per message, as no context takeover requires.
        bytes.extend(frame(
            true,
            true,
            1,
            &ClientDeflate::new().compress(msg.as_bytes()),
        ));
    }
    let (events, err) = feed(&mut c, &bytes);
    assert_eq!((events.len(), err), (3, None));
    for _ in 0..2 {
        c.send(&Message::Text(msg.clone())).unwrap();
    }
    let frames = output(&mut c);
    assert_eq!(
        frames[0], frames[1],
        "no context kept: the same message compresses the same"
    );
}
