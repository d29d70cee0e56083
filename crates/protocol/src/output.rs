//! Bytes and file regions waiting to be sent, in order.
//!
//! Sessions append to an [`Output`]; drivers drain it into a socket, blocking or not.
//! Contiguous bytes are gathered in one buffer so a small response leaves in one `write`;
//! file regions go out with `sendfile(2)`, or, for a session that must transform the bytes
//! (TLS), are read in bounded chunks by [`Output::take_plain`].

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use ironhorse_app::FileRegion;

enum Segment {
    Bytes { buf: Vec<u8>, sent: usize },
    File(FileRegion),
}

/// An ordered queue of bytes and file regions.
#[derive(Default)]
pub struct Output {
    segments: VecDeque<Segment>,
    /// A spare, cleared buffer kept to avoid reallocating for every response.
    spare: Vec<u8>,
}

/// How far a drain got.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Everything was sent.
    All,
    /// The socket would block; wait until it is writable.
    WouldBlock,
}

impl Output {
    /// The buffer to append bytes to (after any queued file region).
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        if !matches!(self.segments.back(), Some(Segment::Bytes { .. })) {
            let buf = std::mem::take(&mut self.spare);
            self.segments.push_back(Segment::Bytes { buf, sent: 0 });
        }
        match self.segments.back_mut() {
            Some(Segment::Bytes { buf, .. }) => buf,
            _ => unreachable!("a bytes segment was just ensured"),
        }
    }

    /// Queues a file region.
    pub fn file(&mut self, region: FileRegion) {
        if region.len > 0 {
            self.segments.push_back(Segment::File(region));
        }
    }

    /// Drops the spare buffer and queue storage while the connection is idle.
    pub fn release_idle_memory(&mut self) {
        if self.is_empty() {
            self.segments = VecDeque::new();
            self.spare = Vec::new();
        }
    }

    /// Whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| match s {
            Segment::Bytes { buf, sent } => *sent == buf.len(),
            Segment::File(r) => r.len == 0,
        })
    }

    /// Whether all that is queued is bytes (no file region), at most `limit` of them: what a
    /// driver may hold back briefly to send with others (a copy-free `sendfile` or a large
    /// body is never held).
    pub fn is_bytes_within(&self, limit: usize) -> bool {
        let mut total = 0;
        for segment in &self.segments {
            match segment {
                Segment::Bytes { buf, sent } => total += buf.len() - sent,
                Segment::File(r) if r.len == 0 => {}
                Segment::File(_) => return false,
            }
        }
        total <= limit
    }

    /// Moves everything queued in `other` behind what is queued here. Small byte runs are
    /// copied onto the bytes queued last (one `write` for both); large ones and file
    /// regions move as they are.
    pub fn append(&mut self, other: &mut Output) {
        const COPY_LIMIT: usize = 16 * 1024;
        for segment in other.segments.drain(..) {
            match segment {
                Segment::Bytes { mut buf, sent }
                    if buf.len() - sent <= COPY_LIMIT
                        && matches!(self.segments.back(), Some(Segment::Bytes { .. })) =>
                {
                    self.bytes().extend_from_slice(&buf[sent..]);
                    if buf.capacity() <= 64 * 1024 && other.spare.capacity() == 0 {
                        buf.clear();
                        other.spare = buf;
                    }
                }
                segment => self.segments.push_back(segment),
            }
        }
    }

    /// Bytes queued (file regions count their length), for backpressure decisions.
    pub fn queued(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Bytes { buf, sent } => (buf.len() - sent) as u64,
                Segment::File(r) => r.len,
            })
            .sum()
    }

    /// Hands up to about `budget` queued bytes, in order, to `sink`, for a session that
    /// transforms its inner session's output (TLS) instead of sending it: byte segments as
    /// they are, file regions read with `pread` in chunks of at most 64 KiB into `scratch`
    /// (never a whole file in memory). Returns the bytes handed over; what is left stays
    /// queued for the next call.
    pub fn take_plain(
        &mut self,
        budget: usize,
        scratch: &mut Vec<u8>,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        const CHUNK: usize = 64 * 1024;
        let mut taken = 0;
        while taken < budget {
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            match front {
                Segment::Bytes { buf, sent } => {
                    sink(&buf[*sent..])?;
                    taken += buf.len() - *sent;
                    if let Some(Segment::Bytes { mut buf, .. }) = self.segments.pop_front() {
                        if buf.capacity() <= 64 * 1024 {
                            buf.clear();
                            self.spare = buf;
                        }
                    }
                }
                Segment::File(region) => {
                    let want = region.len.min(CHUNK.min(budget - taken) as u64) as usize;
                    scratch.resize(want.max(1), 0);
                    let n = match region.file.read_at(&mut scratch[..want], region.offset) {
                        // The file shrank under us: the promised length cannot be met.
                        Ok(0) if want > 0 => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file truncated while sending",
                            ))
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    sink(&scratch[..n])?;
                    taken += n;
                    region.offset += n as u64;
                    region.len -= n as u64;
                    if region.len == 0 {
                        self.segments.pop_front();
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Sends as much as the socket takes. Blocking sockets return only when all is sent
    /// (or on error); non-blocking ones may return [`Drained::WouldBlock`].
    pub fn drain_into<S: Write + AsFd>(&mut self, socket: &mut S) -> io::Result<Drained> {
        while !self.segments.is_empty() {
            // A head followed by a file body: let them share packets (MSG_MORE).
            let file_follows = matches!(self.segments.get(1), Some(Segment::File(_)));
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            let done = match front {
                Segment::Bytes { buf, sent } => {
                    if *sent == buf.len() {
                        true
                    } else {
                        let written = if file_follows {
                            ironhorse_sys::send_more(socket.as_fd(), &buf[*sent..])
                        } else {
                            socket.write(&buf[*sent..])
                        };
                        match written {
                            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                            Ok(n) => *sent += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                return Ok(Drained::WouldBlock)
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                        *sent == buf.len()
                    }
                }
                Segment::File(region) => {
                    let chunk = region.len.min(1 << 30) as usize;
                    match ironhorse_sys::sendfile(
                        socket.as_fd(),
                        region.file.as_fd(),
                        &mut region.offset,
                        chunk,
                    ) {
                        // The file shrank under us: the promised length cannot be met.
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file truncated while sending",
                            ))
                        }
                        Ok(n) => region.len -= n as u64,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Drained::WouldBlock)
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                    region.len == 0
                }
            };
            if done {
                if let Some(Segment::Bytes { mut buf, .. }) = self.segments.pop_front() {
                    if buf.capacity() <= 64 * 1024 {
                        buf.clear();
                        self.spare = buf;
                    }
                }
            }
        }
        Ok(Drained::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    /// A file holding `0123456789`, in a directory named after `tag`.
    fn digits_file(tag: &str) -> Arc<std::fs::File> {
        let dir = std::env::temp_dir().join(format!("ih-output-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // The open file outlives its name: nothing is left behind in the temp directory.
        std::fs::remove_dir_all(&dir).unwrap();
        Arc::new(file)
    }

    #[test]
    fn bytes_and_files_leave_in_order() {
        let file = digits_file("order");

        let mut out = Output::default();
        out.bytes().extend_from_slice(b"head;");
        out.file(FileRegion {
            file,
            offset: 2,
            len: 5,
        });
        out.bytes().extend_from_slice(b";tail");
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(out.drain_into(&mut a).unwrap(), Drained::All);
        drop(a);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut b, &mut got).unwrap();
        assert_eq!(got, b"head;23456;tail");
        assert!(out.is_empty());
    }

    #[test]
    fn appended_output_follows_in_order() {
        let file = digits_file("append");

        let mut held = Output::default();
        held.bytes().extend_from_slice(b"one;");
        let mut more = Output::default();
        more.bytes().extend_from_slice(b"two;");
        more.file(FileRegion {
            file,
            offset: 0,
            len: 3,
        });
        more.bytes().extend(std::iter::repeat_n(b'x', 20_000));
        assert!(held.is_bytes_within(4) && !held.is_bytes_within(3));
        assert!(
            !more.is_bytes_within(usize::MAX),
            "a file region is never held"
        );
        held.append(&mut more);
        assert!(more.is_empty());
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut b, &mut got).unwrap();
            got
        });
        assert_eq!(held.drain_into(&mut a).unwrap(), Drained::All);
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(&got[..11], b"one;two;012");
        assert_eq!(got.len(), 11 + 20_000);
    }
}
