//! PDF text extraction speed: a generated 200-page text PDF, and the corpus's 13-page
//! two-column paper when the corpus is present. `cargo bench -p a2v2-extract`.

use std::hint::black_box;

use a2v2_extract::testpdf::{Line, pdf_with_pages};
use a2v2_extract::{Options, extract};
use criterion::{Criterion, criterion_group, criterion_main};

fn large_pdf() -> Vec<u8> {
    let texts: Vec<String> = (0..50)
        .map(|i| {
            format!("Line {i:02}: Invoice INV-{i:04} dated 12 March 2026, total EUR 1.234,{i:02}")
        })
        .collect();
    let page: Vec<Line<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Line {
            x: 50.0,
            y: 800.0 - 15.0 * i as f64,
            text,
        })
        .collect();
    let pages: Vec<Vec<Line<'_>>> = (0..200)
        .map(|_| {
            page.iter()
                .map(|l| Line {
                    x: l.x,
                    y: l.y,
                    text: l.text,
                })
                .collect()
        })
        .collect();
    pdf_with_pages(&pages)
}

fn bench(c: &mut Criterion) {
    let options = Options::default();
    let pdf = large_pdf();
    let mut group = c.benchmark_group("pdf");
    group.sample_size(10);
    group.bench_function("generated 200 pages", |b| {
        b.iter(|| extract(black_box(&pdf), &options))
    });
    let paper = std::env::var_os("A2V2_CORPUS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        })
        .join("unstructured-example-docs/docs/pdf/multi-column.pdf");
    match std::fs::read(&paper) {
        Ok(bytes) => {
            group.bench_function("corpus multi-column.pdf (13 pages)", |b| {
                b.iter(|| extract(black_box(&bytes), &options))
            });
        }
        Err(e) => eprintln!("skipping the corpus PDF ({}): {e}", paper.display()),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
