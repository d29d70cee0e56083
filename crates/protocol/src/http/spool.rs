//! Where a buffered request body is kept while it arrives (`--buffer-request-body`): in
//! memory up to `--buffer-request-body-memory`, beyond it in an unlinked temporary file
//! (`tempfile::tempfile`: `O_TMPFILE` in `$TMPDIR`, so the file has no name and disappears
//! with its last descriptor, whatever happens to the process), as nginx keeps
//! `client_body_buffer_size` in memory and the rest in `client_body_temp_path`.
//!
//! The memory part is allocated once for a declared length, and doubles for a chunked body,
//! never past the threshold (tempfile's `SpooledTempFile` doubles past both: measured, a
//! 64 KiB body then cost 131 KiB; docs/BENCHMARKS.md#buffered-bodies).
//!
//! The writes happen on the driver's thread (an event loop's, a pool's watcher): a write
//! to a local file lands in the page cache, and each one is at most what one read of the
//! socket brought (64 KiB on the event loop): measured here at p50 22 µs, p99 162 µs per
//! 64 KiB write (max 88 ms on a machine at load 25), so a turn is seldom held up for long.
//! A disk that stalls would stall the loop: the memory threshold keeps the usual small
//! bodies off the disk, and `--buffer-request-body` bounds how much one body writes.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// The smallest memory buffer allocated for a body.
const FIRST: usize = 4096;

/// A body being buffered.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
    /// Bytes kept in memory at most.
    threshold: usize,
    /// The declared length, if any: the memory buffer never grows past it.
    declared: Option<u64>,
}

/// A whole buffered body (or its start), for the application.
pub enum Spooled {
    Memory(Vec<u8>),
    /// Rewound to its start; `len` bytes.
    File(File, u64),
}

impl Spooled {
    pub fn len(&self) -> u64 {
        match self {
            Spooled::Memory(bytes) => bytes.len() as u64,
            Spooled::File(_, len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Spool {
    /// A body of `declared` length (none: chunked), kept in memory up to `threshold` bytes.
    pub fn new(threshold: u64, declared: Option<u64>) -> Spool {
        Spool {
            memory: Vec::new(),
            file: None,
            len: 0,
            threshold: usize::try_from(threshold).unwrap_or(usize::MAX),
            declared,
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the body went to a file.
    #[cfg(test)]
    pub fn is_on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `bytes` (moving the body to a file when they pass the memory threshold).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let needed = self.memory.len() + bytes.len();
        if self.file.is_none() && needed > self.threshold {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes)?,
            None => {
                if needed > self.memory.capacity() {
                    // A declared length is allocated once (pages untouched until bytes
                    // arrive cost no memory); a chunked body's buffer doubles.
                    let target = match self.declared {
                        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                        None => (self.memory.capacity() * 2).max(FIRST),
                    };
                    let target = target.min(self.threshold).max(needed);
                    self.memory.reserve_exact(target - self.memory.len());
                }
                self.memory.extend_from_slice(bytes);
            }
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The body, ready to be read from its start.
    pub fn finish(self) -> io::Result<Spooled> {
        Ok(match self.file {
            None => Spooled::Memory(self.memory),
            Some(mut file) => {
                file.seek(SeekFrom::Start(0))?;
                Spooled::File(file, self.len)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn small_bodies_stay_in_memory_and_large_ones_go_to_a_file_read_from_its_start() {
        let mut small = Spool::new(8, None);
        small.write(b"12345678").unwrap();
        assert!(!small.is_on_disk());
        assert!(matches!(small.finish().unwrap(), Spooled::Memory(b) if b == b"12345678"));

        let mut large = Spool::new(8, Some(9));
        large.write(b"12345").unwrap();
        large.write(b"6789").unwrap();
        assert!(large.is_on_disk());
        let Spooled::File(mut file, len) = large.finish().unwrap() else {
            panic!("a body past the threshold is in a file");
        };
        assert_eq!(len, 9);
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "123456789");
    }

    #[test]
    fn memory_is_the_declared_length_or_doubles_and_never_passes_the_threshold() {
        let mut declared = Spool::new(64 * 1024, Some(10_000));
        declared.write(&[1; 100]).unwrap();
        assert_eq!(
            declared.memory.capacity(),
            10_000,
            "the declared length, once"
        );
        declared.write(&[2; 9900]).unwrap();
        assert_eq!(declared.memory.capacity(), 10_000);
        let mut large = Spool::new(64 * 1024, Some(1 << 20));
        large.write(&[1; 100]).unwrap();
        assert_eq!(
            large.memory.capacity(),
            64 * 1024,
            "never past the threshold"
        );
        let mut chunked = Spool::new(64 * 1024, None);
        for _ in 0..4 {
            chunked.write(&[4; 16 * 1024]).unwrap();
        }
        assert_eq!(
            chunked.memory.capacity(),
            64 * 1024,
            "never past the threshold"
        );
        assert!(!chunked.is_on_disk());
        chunked.write(&[5]).unwrap();
        assert!(chunked.is_on_disk());
        assert_eq!(
            chunked.memory.capacity(),
            0,
            "the memory is freed once on disk"
        );
    }
}
