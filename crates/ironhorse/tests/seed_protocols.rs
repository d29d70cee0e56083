//! The seeds' raw TCP protocols run on the same drivers as HTTP, in every model.

mod common;

use common::{model_args, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = model_args(model);
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

per_model!(echo_sends_every_byte_back, |model| {
    let server = serve(model, &["--protocol", "echo"]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(common::HUNG)).unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            stream.write_all(&payload).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap();
    assert!(
        echoed == payload,
        "echo differs: {} of {} bytes",
        echoed.len(),
        payload.len()
    );
});

per_model!(reverse_answers_after_the_work_delay, |model| {
    let server = serve(model, &["--protocol", "reverse", "--work-delay", "0.3"]);
    let start = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).unwrap();
                stream.set_read_timeout(Some(common::HUNG)).unwrap();
                // Sent in pieces, as seed 000's client does.
                stream.write_all(format!("hel{i}").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                stream.write_all(b"lo!").unwrap();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).unwrap();
                assert_eq!(answer, format!("!ol{i}leh").into_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered before the work delay: {elapsed:?}"
    );
    if model == "single" {
        // One client at a time: the three delays add up.
        assert!(
            elapsed >= Duration::from_millis(900),
            "single served concurrently? {elapsed:?}"
        );
    }
});

per_model!(sigterm_lets_in_flight_work_finish, |model| {
    let server = serve(model, &["--protocol", "reverse", "--work-delay", "1"]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(common::HUNG)).unwrap();
    stream.write_all(b"in flight!").unwrap();
    // Once a server process has accepted the connection, ask the server to stop.
    let client = stream.local_addr().unwrap().to_string();
    assert!(
        common::eventually(|| common::accepted_by_a_process(&server.addr, &client)),
        "the connection was never accepted"
    );
    server.signal(15);
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"!thgilf ni", "the in-flight request was cut short");
    assert_eq!(server.stop(common::HUNG), Some(0));
});
