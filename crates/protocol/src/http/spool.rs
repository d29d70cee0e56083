//! Where a buffered request body is kept while it arrives (`--buffer-request-body`): in
//! memory up to `--buffer-request-body-memory`, beyond it in an unlinked temporary file
//! (`tempfile`'s `SpooledTempFile`: `O_TMPFILE` in `$TMPDIR`, so the file has no name and
//! disappears with its last descriptor, whatever happens to the process), as nginx keeps
//! `client_body_buffer_size` in memory and the rest in `client_body_temp_path`.
//!
//! The writes happen on the driver's thread (an event loop's, a pool's watcher): a write
//! to a local file lands in the page cache, and each one is at most what one read of the
//! socket brought (64 KiB on the event loop), measured at about 10-40 µs per 64 KiB here
//! (docs/BENCHMARKS.md#buffered-bodies), so a turn is not held up for long. A disk that
//! stalls would stall the loop: the threshold is there to keep most bodies in memory.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use tempfile::{SpooledData, SpooledTempFile};

/// A body being buffered.
pub(super) struct Spool {
    data: SpooledTempFile,
    len: u64,
}

/// A whole buffered body, for the application.
pub(in crate::http) enum Spooled {
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
}

impl Spool {
    /// A body kept in memory up to `memory` bytes.
    pub fn new(memory: u64) -> Spool {
        Spool {
            data: SpooledTempFile::new(usize::try_from(memory).unwrap_or(usize::MAX)),
            len: 0,
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body went to a file.
    #[cfg(test)]
    pub fn is_on_disk(&self) -> bool {
        self.data.is_rolled()
    }

    /// Appends `bytes` (creating the file when they pass the memory threshold).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.data.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The body, ready to be read from its start.
    pub fn finish(self) -> io::Result<Spooled> {
        Ok(match self.data.into_inner() {
            SpooledData::InMemory(cursor) => Spooled::Memory(cursor.into_inner()),
            SpooledData::OnDisk(mut file) => {
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
        let mut small = Spool::new(8);
        small.write(b"12345678").unwrap();
        assert!(!small.is_on_disk());
        assert!(matches!(small.finish().unwrap(), Spooled::Memory(b) if b == b"12345678"));

        let mut large = Spool::new(8);
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
}
