//! `wsgi.file_wrapper`: lets a response that is a real file go out with `sendfile(2)`.

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use ironhorse_app::FileRegion;
use pyo3::prelude::*;

/// Wraps a file-like object; iterating reads it in `blksize` blocks (the fallback for
/// file-likes without a real file behind them).
#[pyclass(module = "ironhorse", name = "FileWrapper", frozen)]
pub(crate) struct FileWrapper {
    filelike: Py<PyAny>,
    blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        Ok(data.is_truthy()?.then_some(data))
    }

    /// Closes the wrapped file-like, if it can be closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

/// `result` as a sendfile region: the rest of the file (at most `limit` bytes, the declared
/// `Content-Length`) when the application returned a `wsgi.file_wrapper` over a regular
/// file that holds that much; `None` for any other result (the caller iterates it). What
/// hosts that run the application elsewhere (the gevent hub) use, so both paths cut the
/// file the same way.
pub fn wrapped_region(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    limit: Option<u64>,
) -> Option<FileRegion> {
    result.cast::<FileWrapper>().ok()?.get().region(py, limit)
}

impl FileWrapper {
    /// The rest of the file from its current position (at most `limit` bytes) when the
    /// file-like is backed by a regular file; `None` otherwise.
    pub(crate) fn region(&self, py: Python<'_>, limit: Option<u64>) -> Option<FileRegion> {
        let f = self.filelike.bind(py);
        let fd: i32 = f.call_method0("fileno").ok()?.extract().ok()?;
        let offset: u64 = f.call_method0("tell").ok()?.extract().ok()?;
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is the descriptor of the Python file object we hold a reference to;
        // with the GIL held nobody can close it during this short borrow, and we dup it at once.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .ok()?;
        let file = File::from(owned);
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let len = meta.len().saturating_sub(offset);
        if limit.is_some_and(|declared| declared > len) {
            // Shorter than the declared length: iterated like any body, whose short end cuts
            // the connection, rather than sent whole under a length corrected in silence.
            return None;
        }
        Some(FileRegion {
            file: Arc::new(file),
            offset,
            len: limit.map_or(len, |l| l.min(len)),
        })
    }
}
