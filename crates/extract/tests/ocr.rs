//! OCR accuracy and behaviour on the images in tests/fixtures/ocr (made by generate.py there),
//! with the Tesseract library installed by scripts/install-ocr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ocr {
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};
    use std::time::Instant;

    use a2v2_extract::Ocr;
    use a2v2_extract::ocr::Tesseract;

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ocr")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The expected text of each page of a fixture.
    fn truth(name: &str) -> Vec<String> {
        let text = String::from_utf8(fixture(&format!("{name}.txt"))).expect("UTF-8 truth");
        text.split("\n====\n").map(str::to_owned).collect()
    }

    fn engine() -> Arc<Tesseract> {
        static ENGINE: OnceLock<Arc<Tesseract>> = OnceLock::new();
        ENGINE
            .get_or_init(|| {
                Arc::new(Tesseract::load("eng").unwrap_or_else(|e| {
                    panic!("OCR tests need Tesseract (run scripts/install-ocr): {e}")
                }))
            })
            .clone()
    }

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
        let mut previous: Vec<usize> = (0..=b.len()).collect();
        for (i, x) in a.iter().enumerate() {
            let mut current = vec![i + 1];
            for (j, y) in b.iter().enumerate() {
                let substitution = previous[j] + usize::from(x != y);
                current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
            }
            previous = current;
        }
        previous[b.len()]
    }

    /// Character error rate over whitespace-normalised text, and word accuracy.
    fn score(expected: &str, read: &str) -> (f64, f64) {
        let normal = |t: &str| words(t).join(" ").chars().collect::<Vec<char>>();
        let (e, r) = (normal(expected), normal(read));
        let cer = edit_distance(&e, &r) as f64 / e.len() as f64;
        let (ew, rw) = (words(expected), words(read));
        let word_accuracy = 1.0 - edit_distance(&ew, &rw) as f64 / ew.len() as f64;
        (cer, word_accuracy.max(0.0))
    }

    struct Case {
        file: &'static str,
        /// Highest character error rate and lowest word accuracy accepted, per page.
        max_cer: f64,
        min_words: f64,
    }

    const CASES: &[Case] = &[
        Case {
            file: "card.png",
            max_cer: 0.01,
            min_words: 0.95,
        },
        Case {
            file: "invoice.png",
            max_cer: 0.01,
            min_words: 0.95,
        },
        Case {
            file: "fonts.png",
            max_cer: 0.01,
            min_words: 0.95,
        },
        Case {
            file: "card.webp",
            max_cer: 0.01,
            min_words: 0.95,
        },
        Case {
            file: "card-photo.jpg",
            max_cer: 0.05,
            min_words: 0.85,
        },
        Case {
            file: "card-exif.jpg",
            max_cer: 0.03,
            min_words: 0.9,
        },
        Case {
            file: "receipt-photo.jpg",
            max_cer: 0.05,
            min_words: 0.85,
        },
        Case {
            file: "scan.tiff",
            max_cer: 0.03,
            min_words: 0.9,
        },
    ];

    fn read_pages(file: &str) -> Vec<String> {
        let bytes = fixture(file);
        if file.ends_with(".pdf") {
            (1..=truth(file).len() as u32)
                .map(|page| engine().read_pdf_page(&bytes, page).expect("PDF page read"))
                .collect()
        } else {
            engine()
                .read_image(&bytes)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
        }
    }

    #[test]
    fn ocr_accuracy_table() {
        let mut cases: Vec<&Case> = CASES.iter().collect();
        let pdf = Case {
            file: "scan.pdf",
            max_cer: 0.03,
            min_words: 0.9,
        };
        cases.push(&pdf);
        let mut failures = Vec::new();
        println!(
            "{:<20} {:>4} {:>7} {:>7} {:>7}",
            "file", "page", "CER", "words", "seconds"
        );
        for case in cases {
            let started = Instant::now();
            let pages = read_pages(case.file);
            let seconds = started.elapsed().as_secs_f64() / pages.len().max(1) as f64;
            let expected = truth(case.file);
            assert_eq!(pages.len(), expected.len(), "{}: page count", case.file);
            for (number, (read, expected)) in pages.iter().zip(&expected).enumerate() {
                let (cer, word_accuracy) = score(expected, read);
                println!(
                    "{:<20} {:>4} {:>6.2}% {:>6.1}% {:>7.2}",
                    case.file,
                    number + 1,
                    cer * 100.0,
                    word_accuracy * 100.0,
                    seconds
                );
                if cer > case.max_cer || word_accuracy < case.min_words {
                    failures.push(format!("{} page {}:\n{read}", case.file, number + 1));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "below the thresholds:\n{}",
            failures.join("\n---\n")
        );
    }
}
