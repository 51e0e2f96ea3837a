//! Prints the text and fields of the documents named on the command line, with timings.
//! `QUIET=1` leaves out the text, `TEXT_ONLY=1` prints nothing but the text.

use std::time::Instant;

fn main() {
    let options = a2v2_extract::Options {
        default_region: std::env::var("REGION").ok(),
        ..Default::default()
    };
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let options = a2v2_extract::Options {
            filename: Some(path.clone()),
            ..options.clone()
        };
        let result = a2v2_extract::extract(&bytes, &options);
        let elapsed = started.elapsed();
        match result {
            Ok(e) if std::env::var_os("TEXT_ONLY").is_some() => println!("{}", e.text),
            Ok(e) => {
                println!(
                    "== {path}: {:?}, {} pages, {:.1} ms",
                    e.format,
                    e.pages.len(),
                    elapsed.as_secs_f64() * 1e3
                );
                if std::env::var_os("QUIET").is_none() {
                    println!("{}", e.text);
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&e.fields).unwrap_or_default()
                );
            }
            Err(e) => println!("== {path}: error {} ({e})", e.code()),
        }
    }
}
