//! Progress lines on stderr for the person waiting on a long call (the
//! trainer's steps and iterations).

use std::io::IsTerminal;
use std::time::Instant;

/// Progress lines on stderr for the person waiting on a long call: on by
/// default when stderr is a terminal (the CLI), off otherwise (notebooks,
/// servers); `SET VARIABLE ecoreco_progress = true/false` overrides.
pub struct Progress {
    function: String,
    on: bool,
    start: Instant,
}

impl Progress {
    pub fn new(function: &str, setting: &str) -> Self {
        let on = match setting.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => true,
            "false" | "off" | "0" | "no" => false,
            _ => std::io::stderr().is_terminal(),
        };
        Progress {
            function: function.to_string(),
            on,
            start: Instant::now(),
        }
    }

    /// Prints `function: message (elapsed s)`.
    pub fn say(&self, message: impl AsRef<str>) {
        if self.on {
            eprintln!(
                "{}: {} ({:.1} s)",
                self.function,
                message.as_ref(),
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}
