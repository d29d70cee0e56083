//! The `ironhorse` command: settings in, a running server out.
#![forbid(unsafe_code)]

mod app;
mod logs;
mod settings;
mod setup;
mod values;

fn main() {
    let values = match settings::command().try_get_matches() {
        Ok(matches) => match values::Values::load(matches) {
            Ok(values) => values,
            Err(e) => {
                eprintln!("ironhorse: {e}");
                std::process::exit(2);
            }
        },
        Err(e) if e.use_stderr() => {
            // One clear line, not clap's usage block.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "ironhorse: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            std::process::exit(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return;
        }
    };
    if values.flag("print-settings-doc") {
        print!("{}", settings::markdown());
        return;
    }
    if values.flag("print-config") {
        print!("{}", values.to_toml());
        return;
    }
    if values.flag("check-config") {
        match setup::Server::check(&values) {
            Ok(()) => println!("ironhorse: configuration OK"),
            Err(e) => {
                eprintln!("ironhorse: {e}");
                std::process::exit(2);
            }
        }
        return;
    }
    match setup::Server::from_settings(&values) {
        Ok(server) => std::process::exit(server.run()),
        Err(e) => {
            eprintln!("ironhorse: {e}");
            std::process::exit(2);
        }
    }
}
