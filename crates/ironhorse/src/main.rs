//! The `ironhorse` command: settings in, a running server out.

mod app;
mod logs;
mod settings;
mod setup;

fn main() {
    let values = match settings::command().try_get_matches() {
        Ok(matches) => settings::Values(matches),
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
    match setup::Server::from_settings(&values) {
        Ok(server) => std::process::exit(server.run()),
        Err(e) => {
            eprintln!("ironhorse: {e}");
            std::process::exit(2);
        }
    }
}
