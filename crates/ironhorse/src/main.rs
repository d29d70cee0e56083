//! The standalone `ironhorse` command: the library's [`ironhorse::run`] with this process's
//! arguments. It embeds CPython itself (linked at build time; `--virtualenv` picks the venv).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(ironhorse::run(std::env::args_os()));
}
