//! Links the binary to the libpython PyO3 was built against (a RUNPATH), so the right one of
//! the machine's Python installations is loaded at run time (see the wsgi crate).

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
