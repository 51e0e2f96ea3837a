//! Accuracy on the shared corpus of real documents (invoice2data invoices with their expected
//! fields, Unstructured's example documents with expected text and e-mail headers). Each test
//! prints a score table and fails below the threshold the library is known to reach.
//!
//! The corpus is found through `A2V2_CORPUS_DIR`, else `../../../shared/corpus` from this
//! crate, else `/work/shared/corpus`; without it the tests say so and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use a2v2_extract::{ExtractError, Extraction, Format, Options, Schema, extract};
use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("A2V2_CORPUS_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")),
        Some(PathBuf::from("/work/shared/corpus")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_dir());
    if found.is_none() {
        eprintln!(
            "SKIPPED: the document corpus was not found (set A2V2_CORPUS_DIR, or place it at ../../../shared/corpus)"
        );
    }
    found
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn run(path: &Path, options: &Options) -> Result<Extraction, ExtractError> {
    let bytes = std::fs::read(path).unwrap();
    let options = Options {
        filename: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..options.clone()
    };
    extract(&bytes, &options)
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn pct(found: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 * found as f64 / total as f64
    }
}

#[test]
fn every_document_extracts_or_fails_with_a_clear_error() {
    let Some(root) = corpus() else { return };
    let mut table = Vec::new();
    for path in files_under(&root) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") || name.ends_with(".md") {
            continue;
        }
        let started = Instant::now();
        let result = run(&path, &Options::default());
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let outcome = match &result {
            Ok(e) => format!(
                "{:?}, {} pages, {} chars",
                e.format,
                e.pages.len(),
                e.text.chars().count()
            ),
            Err(e) => format!("error {}", e.code()),
        };
        table.push(format!(
            "{ms:>8.1} ms  {outcome:<40} {}",
            path.strip_prefix(&root).unwrap().display()
        ));
        match name.as_str() {
            "password.pdf" => assert_eq!(result.unwrap_err(), ExtractError::Encrypted),
            "single_table.pdf" => assert!(result.unwrap().text.is_empty()),
            n if n.ends_with(".png") => {
                assert_eq!(result.unwrap_err(), ExtractError::OcrUnavailable)
            }
            n => {
                let e = result.unwrap_or_else(|e| panic!("{n}: {e}"));
                let blank = std::fs::read(&path)
                    .unwrap()
                    .iter()
                    .all(|b| b.is_ascii_whitespace());
                // single_table.pdf is a scanned page: one image, no fonts, so no text layer.
                if !blank && n != "single_table.pdf" {
                    assert!(!e.text.trim().is_empty(), "{n}: no text");
                }
            }
        }
    }
    println!("{}", table.join("\n"));
}

fn number_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| format!("{f:.2}")),
        Value::String(s) => s.parse::<f64>().ok().map(|f| format!("{f:.2}")),
        _ => None,
    }
}

#[test]
fn invoice_fields_match_the_expected_values() {
    let Some(root) = corpus() else { return };
    let schema = Schema::parse(
        br#"{"fields":[{"name":"invoice_number","type":"string"},{"name":"date","type":"date"},{"name":"amount","type":"money"},{"name":"currency","type":"string"}]}"#,
    )
    .unwrap();
    let options = Options {
        schema: Some(schema),
        ..Options::default()
    };
    // (field, found, expected)
    let mut scores: Vec<(&str, usize, usize)> = vec![
        ("amount", 0, 0),
        ("date", 0, 0),
        ("currency", 0, 0),
        ("invoice_number", 0, 0),
        ("partner_email", 0, 0),
        ("partner_website", 0, 0),
    ];
    let mut rows = Vec::new();
    for json in files_under(&root.join("invoice2data"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let stem = json.with_extension("");
        let Some(document) = ["pdf", "txt"]
            .iter()
            .map(|e| stem.with_extension(e))
            .find(|p| p.exists())
        else {
            continue;
        };
        let expected: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let expected = &expected[0];
        let e = run(&document, &options).unwrap();
        let got = &e.schema_fields;
        let name = stem.file_name().unwrap().to_string_lossy().into_owned();
        let mut row = format!("{name:<24}");
        let mut score = |field: &'static str, ok: Option<bool>, shown: String| {
            if let Some(ok) = ok {
                let entry = scores.iter_mut().find(|s| s.0 == field).unwrap();
                entry.2 += 1;
                entry.1 += ok as usize;
                row.push_str(&format!(" {field}={shown}{}", if ok { "" } else { " ✗" }));
            }
        };
        let amount_ok = number_string(&expected["amount"])
            .map(|want| number_string(&got["amount"]) == Some(want));
        score("amount", amount_ok, got["amount"].to_string());
        let date_ok = expected["date"]
            .as_str()
            .map(|want| got["date"].as_str() == Some(want));
        score("date", date_ok, got["date"].to_string());
        let currency_ok = expected["currency"]
            .as_str()
            .map(|want| got["currency"].as_str() == Some(want));
        score("currency", currency_ok, got["currency"].to_string());
        // Orlen's template captures only "F" of "F 1234K20/1234/12" (see the corpus README).
        let number_ok = (name != "Orlen")
            .then(|| expected["invoice_number"].as_str())
            .flatten()
            .map(|want| got["invoice_number"].as_str() == Some(want.trim_start_matches('#')));
        score(
            "invoice_number",
            number_ok,
            got["invoice_number"].to_string(),
        );
        let email_ok = expected["partner_email"].as_str().map(|want| {
            e.fields
                .emails
                .iter()
                .any(|f| f.value.eq_ignore_ascii_case(want))
        });
        score("partner_email", email_ok, String::new());
        let site_ok = expected["partner_website"].as_str().map(|want| {
            let want = want
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_start_matches("www.");
            e.fields.urls.iter().any(|f| f.value.contains(want)) || e.text.contains(want)
        });
        score("partner_website", site_ok, String::new());
        rows.push(row);
    }
    println!("{}", rows.join("\n"));
    println!(
        "{:<16} {:>6} {:>9} {:>7}",
        "field", "found", "expected", "score"
    );
    for (field, found, total) in &scores {
        println!(
            "{field:<16} {found:>6} {total:>9} {:>6.1}%",
            pct(*found, *total)
        );
    }
    let score = |f: &str| {
        scores
            .iter()
            .find(|s| s.0 == f)
            .map(|s| pct(s.1, s.2))
            .unwrap()
    };
    assert!(score("amount") >= 90.0, "total below 90%");
    assert!(score("date") >= 90.0, "date below 90%");
    assert!(score("currency") >= 90.0, "currency below 90%");
    assert!(score("invoice_number") >= 80.0, "invoice number below 80%");
    // saeco.pdf prints its e-mail address and website only in an image (the corpus README:
    // it "needs to be OCR'd"), so without OCR one of each is out of reach.
    assert!(score("partner_email") >= 50.0, "partner e-mail missed");
    assert!(score("partner_website") >= 66.0, "partner website missed");
}

#[test]
fn every_email_header_is_found() {
    let Some(root) = corpus() else { return };
    let base = root.join("unstructured-example-docs");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(base.join("expected/eml_headers.json")).unwrap())
            .unwrap();
    let (mut found, mut total) = (0, 0);
    let mut misses = Vec::new();
    for (file, headers) in expected.as_object().unwrap() {
        let path = ["docs", "docs/language-docs"]
            .iter()
            .map(|d| base.join(d).join(file))
            .find(|p| p.exists());
        let path = path.unwrap_or_else(|| base.join("docs").join(file));
        let e = run(&path, &Options::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(e.format, Format::Email, "{file}");
        let text = normalize(&e.text);
        for key in ["from", "to", "cc", "bcc", "reply_to"] {
            for address in headers[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                total += 1;
                if e.fields
                    .emails
                    .iter()
                    .any(|f| f.value.eq_ignore_ascii_case(address))
                {
                    found += 1;
                } else {
                    misses.push(format!("{file}: {key} {address}"));
                }
            }
        }
        if let Some(subject) = headers["subject"].as_str().filter(|s| !s.trim().is_empty()) {
            total += 1;
            if text.contains(&normalize(subject)) {
                found += 1;
            } else {
                misses.push(format!("{file}: subject {subject}"));
            }
        }
        if let Some(iso) = headers["date_iso"].as_str() {
            total += 1;
            if e.fields.dates.iter().any(|d| iso.starts_with(&d.value)) {
                found += 1;
            } else {
                misses.push(format!("{file}: date {iso}"));
            }
        }
    }
    println!(
        "e-mail headers found: {found}/{total} ({:.1}%)",
        pct(found, total)
    );
    assert!(misses.is_empty(), "missed: {misses:#?}");
}

/// Unstructured's element texts for a document, each as it must appear in ours.
fn expected_elements(path: &Path) -> Vec<String> {
    let elements: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    elements
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .map(normalize)
        .filter(|t| !t.is_empty())
        .collect()
}

/// An expected element appears in our text: verbatim up to whitespace (Unstructured puts a
/// space after an opening parenthesis where the HTML has none), or — for the Windows-1252
/// page, whose expected text Unstructured decoded as Windows-1250 (`trčs` for `très`) — with
/// at least nine in ten of its words.
fn appears(element: &str, text: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    if squeeze(text).contains(&squeeze(element)) {
        return true;
    }
    let words: std::collections::HashSet<&str> = text.split_whitespace().collect();
    let expected: Vec<&str> = element.split_whitespace().collect();
    let present = expected.iter().filter(|w| words.contains(*w)).count();
    present * 10 >= expected.len() * 9
}

#[test]
fn text_contains_the_expected_elements() {
    let Some(root) = corpus() else { return };
    let base = root.join("unstructured-example-docs");
    let mut all = (0, 0);
    for (document, expected) in [
        ("fake-text.txt", "fake-text.txt.json"),
        ("ideas-page.html", "ideas-page.html.json"),
        ("handbook-1p.docx", "handbook-1p.docx.json"),
        ("fake-html-cp1252.html", "fake-html-cp1252.html.json"),
    ] {
        let e = run(&base.join("docs").join(document), &Options::default()).unwrap();
        let text = normalize(&e.text);
        let elements = expected_elements(&base.join("expected").join(expected));
        let found = elements.iter().filter(|t| appears(t, &text)).count();
        for missing in elements.iter().filter(|t| !appears(t, &text)) {
            println!("  {document}: missing {missing:?}");
        }
        println!(
            "{document:<28} {found}/{} elements ({:.1}%)",
            elements.len(),
            pct(found, elements.len())
        );
        all.0 += found;
        all.1 += elements.len();
    }
    println!("all: {:.1}%", pct(all.0, all.1));
    assert_eq!(all.0, all.1, "every expected element appears");
}

#[test]
fn two_column_pdf_reads_in_column_order() {
    let Some(root) = corpus() else { return };
    let base = root.join("unstructured-example-docs");
    let e = run(
        &base.join("docs/pdf/multi-column-2p.pdf"),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(e.pages.len(), 2);
    let text = normalize(&e.text);
    // Probes: the first words of each paragraph of Unstructured's chunks, in their order.
    let probes: Vec<String> =
        expected_elements(&base.join("expected/multi-column-2p.pdf.chunks.json"))
            .iter()
            .flat_map(|chunk| {
                let chunk: Vec<String> = chunk
                    .split(". ")
                    .map(|s| s.chars().take(40).collect())
                    .collect();
                chunk
            })
            .filter(|p: &String| p.chars().count() >= 30)
            .collect();
    let positions: Vec<Option<usize>> = probes.iter().map(|p| text.find(p.as_str())).collect();
    let found: Vec<usize> = positions.iter().flatten().copied().collect();
    let in_order = found.windows(2).filter(|w| w[0] < w[1]).count();
    let found_pct = pct(found.len(), probes.len());
    let order_pct = pct(in_order, found.len().saturating_sub(1));
    println!(
        "two-column PDF: {}/{} probes found ({found_pct:.1}%), {order_pct:.1}% of consecutive probes in order",
        found.len(),
        probes.len()
    );
    assert!(found_pct >= 80.0);
    assert!(order_pct >= 90.0);
}
