//! An echo WebSocket server on the engine, for trying clients by hand:
//! `cargo run -p ironhorse-ws --example echo_server` prints its `ws://` address and serves
//! until interrupted.

#[path = "support/echo.rs"]
mod echo;

fn main() {
    let port = echo::start_server();
    println!(
        "ws://127.0.0.1:{port}/ (messages over {} bytes get close 1009)",
        echo::LIMIT
    );
    loop {
        std::thread::park();
    }
}
