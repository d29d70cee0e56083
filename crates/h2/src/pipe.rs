//! The in-memory transport the `h2` crate runs over: the session pushes the bytes its
//! driver received into it, and takes out what `h2` wrote. `h2` expects tokio's
//! `AsyncRead`/`AsyncWrite`; reading an empty pipe is `Pending` (the session polls again
//! after its driver hands it more), writing a full one is `Pending` too (the session asks
//! its driver to flush, then polls again): both ways are bounded.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes `h2` may write before the session moves them to the driver's output.
const WRITE_LIMIT: usize = 256 * 1024;

#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    /// How much of `input` was read already.
    read: usize,
    /// The peer closed its side.
    eof: bool,
    output: Vec<u8>,
    /// A write found the pipe full: `h2` waits for room.
    write_blocked: bool,
}

/// Both directions, shared by the session and the `h2` connection that owns a clone.
#[derive(Clone, Default)]
pub(crate) struct Pipe {
    shared: Arc<Mutex<Buffers>>,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, Buffers> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes from the peer.
    pub fn push_input(&self, data: &[u8]) {
        let mut b = self.lock();
        if b.read == b.input.len() {
            b.input.clear();
            b.read = 0;
        }
        b.input.extend_from_slice(data);
    }

    /// The peer closed its side.
    pub fn push_eof(&self) {
        self.lock().eof = true;
    }

    /// Whether received bytes wait for `h2`.
    pub fn has_input(&self) -> bool {
        let b = self.lock();
        b.read < b.input.len()
    }

    /// Moves what `h2` wrote to `out`; whether `h2` was blocked on a full pipe (it wants to
    /// be polled again once `out` was sent).
    pub fn take_output(&self, out: &mut Vec<u8>) -> bool {
        let mut b = self.lock();
        if out.is_empty() {
            std::mem::swap(out, &mut b.output);
        } else {
            out.extend_from_slice(&b.output);
            b.output.clear();
        }
        std::mem::take(&mut b.write_blocked)
    }

    /// Frees the buffers of an idle connection.
    pub fn release_idle_memory(&self) {
        let mut b = self.lock();
        if b.read == b.input.len() {
            b.input = Vec::new();
            b.read = 0;
        }
        if b.output.is_empty() {
            b.output = Vec::new();
        }
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut b = self.lock();
        let available = b.input.len() - b.read;
        if available == 0 {
            // An empty read is the end of input; otherwise the session polls again when
            // its driver brings more.
            return if b.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = available.min(buf.remaining());
        let start = b.read;
        buf.put_slice(&b.input[start..start + n]);
        b.read += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut b = self.lock();
        let room = WRITE_LIMIT.saturating_sub(b.output.len());
        if room == 0 {
            b.write_blocked = true;
            return Poll::Pending;
        }
        let n = room.min(data.len());
        b.output.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn reads_what_was_pushed_then_pends_then_ends() {
        let pipe = Pipe::default();
        let mut io = pipe.clone();
        let mut cx = Context::from_waker(Waker::noop());
        let mut space = [0u8; 8];
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending());
        pipe.push_input(b"abc");
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled(), b"abc");
        pipe.push_eof();
        let mut space = [0u8; 8];
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert!(buf.filled().is_empty(), "end of input");
    }

    #[test]
    fn writes_are_bounded_until_taken() {
        let pipe = Pipe::default();
        let mut io = pipe.clone();
        let mut cx = Context::from_waker(Waker::noop());
        let big = vec![7u8; WRITE_LIMIT + 10];
        let n = match Pin::new(&mut io).poll_write(&mut cx, &big) {
            Poll::Ready(Ok(n)) => n,
            _ => panic!("room expected"),
        };
        assert_eq!(n, WRITE_LIMIT);
        assert!(Pin::new(&mut io)
            .poll_write(&mut cx, &big[n..])
            .is_pending());
        let mut out = Vec::new();
        assert!(pipe.take_output(&mut out), "h2 was blocked");
        assert_eq!(out.len(), WRITE_LIMIT);
        assert!(Pin::new(&mut io).poll_write(&mut cx, &big[n..]).is_ready());
    }
}
