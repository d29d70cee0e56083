//! Pins the embedded interpreter to the one PyO3 was built against.
//!
//! Two libpython3.11 live on this kind of machine; without a RUNPATH the loader may pick the
//! system one, and without an explicit `PyConfig.executable` the runtime may pair the library
//! with another installation's stdlib. So: RUNPATH for this package's tests and examples, and
//! the interpreter path exported for `init_python`.

fn main() {
    // `cfg(Py_LIMITED_API)` for a stable-ABI build of the extension module (crates/python).
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();
    let cfg = pyo3_build_config::get();
    if let Some(exe) = cfg.executable() {
        println!("cargo:rustc-env=IRONHORSE_PYTHON_EXECUTABLE={exe}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
