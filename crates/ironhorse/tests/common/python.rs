//! Python applications under test: where they live and how to start ironhorse on them.

use std::path::PathBuf;

/// The folder of the test WSGI apps (`crates/ironhorse/tests/apps`).
pub fn apps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The virtualenv with the frameworks (`scripts/venv.sh` makes it; `scripts/test.sh`
/// exports its path as `IRONHORSE_TEST_VENV`).
pub fn venv() -> PathBuf {
    match std::env::var_os("IRONHORSE_TEST_VENV") {
        Some(path) => PathBuf::from(path),
        None => panic!("IRONHORSE_TEST_VENV is not set: run ./scripts/test.sh, or export IRONHORSE_TEST_VENV=$(./scripts/venv.sh)"),
    }
}

/// Arguments to serve `spec` (MODULE:CALLABLE) from `dir` under `model`.
pub fn wsgi_args(model: &str, spec: &str, dir: &std::path::Path) -> Vec<String> {
    let mut args = super::model_args(model);
    args.extend([
        spec.to_string(),
        "--chdir".into(),
        dir.display().to_string(),
    ]);
    args
}
