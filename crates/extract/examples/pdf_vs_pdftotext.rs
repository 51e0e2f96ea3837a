//! PDF text extraction next to `pdftotext` (poppler-utils) on the same files, in one run:
//! time per file (median of several runs each; pdftotext's includes starting its process, as
//! a server shelling out to it would pay) and the similarity of the two texts as word
//! multisets (2·|A∩B| / (|A|+|B|), words lower-cased, punctuation dropped).
//!
//! `cargo run --release -p a2v2-extract --example pdf_vs_pdftotext [DIR|FILE.pdf ...]`;
//! without arguments it reads every PDF under `../shared/corpus` (or `A2V2_CORPUS_DIR`).
//! Files that either side cannot read as text (encrypted, scans without a text layer) are
//! listed and left out of the totals. Exits non-zero when a target is missed: total time at
//! most 2× pdftotext's, mean similarity at least 0.95.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

const RUNS: usize = 5;

fn main() {
    let mut files = Vec::new();
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let roots = if args.is_empty() {
        vec![
            std::env::var_os("A2V2_CORPUS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
                }),
        ]
    } else {
        args
    };
    for root in roots {
        collect_pdfs(&root, &mut files);
    }
    files.sort();
    if files.is_empty() {
        eprintln!("no PDF files found");
        std::process::exit(2);
    }
    if Command::new("pdftotext").arg("-v").output().is_err() {
        eprintln!("pdftotext is not installed (Debian package poppler-utils)");
        std::process::exit(2);
    }

    let options = a2v2_extract::Options::default();
    let (mut ours_total, mut theirs_total) = (Duration::ZERO, Duration::ZERO);
    let mut similarities = Vec::new();
    println!(
        "| file | pages | a2v2 ms | pdftotext ms | ratio | similarity |\n|---|---:|---:|---:|---:|---:|"
    );
    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let Ok(bytes) = std::fs::read(path) else {
            println!("| {name} | – | – | – | – | unreadable |");
            continue;
        };
        let ours = a2v2_extract::extract(&bytes, &options);
        let theirs = pdftotext(path);
        let (ours, theirs) = match (ours, theirs) {
            (Ok(ours), Some(theirs)) if has_words(&ours.text) && has_words(&theirs) => {
                (ours, theirs)
            }
            (ours, theirs) => {
                let why = match (ours, theirs) {
                    (Err(err), _) => format!("a2v2: {err}"),
                    (_, None) => "pdftotext failed".to_owned(),
                    _ => "no text layer".to_owned(),
                };
                println!("| {name} | – | – | – | – | left out: {why} |");
                continue;
            }
        };
        let ours_time = median(|| {
            let _ = a2v2_extract::extract(&bytes, &options);
        });
        let theirs_time = median(|| {
            let _ = pdftotext(path);
        });
        let similarity = word_similarity(&ours.text, &theirs);
        ours_total += ours_time;
        theirs_total += theirs_time;
        similarities.push(similarity);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.2} | {similarity:.3} |",
            ours.pages.len(),
            ms(ours_time),
            ms(theirs_time),
            ms(ours_time) / ms(theirs_time),
        );
    }
    let ratio = ms(ours_total) / ms(theirs_total);
    let mean = similarities.iter().sum::<f64>() / similarities.len().max(1) as f64;
    println!(
        "\n{} files: a2v2 {:.1} ms, pdftotext {:.1} ms in total; time ratio {ratio:.2} (target ≤ 2), \
         mean similarity {mean:.3} (target ≥ 0.95)",
        similarities.len(),
        ms(ours_total),
        ms(theirs_total)
    );
    if ratio > 2.0 || mean < 0.95 {
        std::process::exit(1);
    }
}

fn collect_pdfs(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                collect_pdfs(&entry.path(), out);
            }
        }
    } else if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("pdf"))
    {
        out.push(path.to_owned());
    }
}

fn pdftotext(path: &Path) -> Option<String> {
    let output = Command::new("pdftotext")
        .arg("-q")
        .arg(path)
        .arg("-")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

fn word_similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    let total: usize = a.values().sum::<usize>() + b.values().sum::<usize>();
    if total == 0 {
        return 1.0;
    }
    let common: usize = a
        .iter()
        .map(|(word, n)| (*n).min(b.get(word).copied().unwrap_or(0)))
        .sum();
    2.0 * common as f64 / total as f64
}
