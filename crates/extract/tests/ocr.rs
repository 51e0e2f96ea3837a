//! OCR accuracy and behaviour on the images in tests/fixtures/ocr (made by generate.py there),
//! with the Tesseract library installed by scripts/install-ocr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ocr {
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use a2v2_extract::ocr::{OcrLoadError, Tesseract, TesseractConfig};
    use a2v2_extract::{ExtractError, Ocr};
    use lopdf::{Document, Object, Stream, dictionary};

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

    /// Each fixture with the highest character error rate and the lowest word accuracy
    /// accepted on each of its pages.
    const CASES: &[(&str, f64, f64)] = &[
        // Clean 300-dpi renders.
        ("card.png", 0.01, 0.95),
        ("invoice.png", 0.01, 0.95),
        ("fonts.png", 0.01, 0.95),
        ("card.webp", 0.01, 0.95),
        // Photos and scans: smaller, tilted, noisy, JPEG-compressed, EXIF-rotated.
        ("card-photo.jpg", 0.03, 0.9),
        ("card-exif.jpg", 0.03, 0.9),
        ("card-small.jpg", 0.05, 0.85),
        ("receipt-photo.jpg", 0.03, 0.9),
        ("scan.tiff", 0.03, 0.9),
        ("scan.pdf", 0.03, 0.9),
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
        let mut failures = Vec::new();
        println!(
            "{:<20} {:>4} {:>7} {:>7} {:>7}",
            "file", "page", "CER", "words", "seconds"
        );
        for &(file, max_cer, min_words) in CASES {
            let started = Instant::now();
            let pages = read_pages(file);
            let seconds = started.elapsed().as_secs_f64() / pages.len().max(1) as f64;
            let expected = truth(file);
            assert_eq!(pages.len(), expected.len(), "{file}: page count");
            for (number, (read, expected)) in pages.iter().zip(&expected).enumerate() {
                let (cer, word_accuracy) = score(expected, read);
                println!(
                    "{:<20} {:>4} {:>6.2}% {:>6.1}% {:>7.2}",
                    file,
                    number + 1,
                    cer * 100.0,
                    word_accuracy * 100.0,
                    seconds
                );
                if cer > max_cer || word_accuracy < min_words {
                    failures.push(format!("{file} page {}:\n{read}", number + 1));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "below the thresholds:\n{}",
            failures.join("\n---\n")
        );
    }

    fn normalised(text: &str) -> String {
        words(text).join(" ")
    }

    /// What field and contact extraction look for is in the text read from the pictures, as
    /// written (emails, phones, totals, invoice numbers).
    #[test]
    fn ocr_reads_the_fields_of_cards_invoices_and_receipts() {
        let card = [
            "anna.schmidt@northwind-logistics.com",
            "+49 30 1234 5678",
            "Anna Schmidt",
        ];
        let invoice = [
            "INV-2026-0042",
            "12 March 2026",
            "jonathan.miller@millersons.co.uk",
            "+44 20 7946 0958",
            "Total Due: $1,481.40",
        ];
        for (file, expected) in [
            ("card-photo.jpg", &card[..]),
            ("card-exif.jpg", &card[..]),
            ("invoice.png", &invoice[..]),
            (
                "receipt-photo.jpg",
                &["TOTAL EUR 9.70", "2026-03-12 08:41"][..],
            ),
        ] {
            let text = normalised(&engine().read_image(&fixture(file)).unwrap().join("\n"));
            for value in expected {
                assert!(text.contains(value), "{file}: {value:?} not in {text:?}");
            }
        }
        let page = engine().read_pdf_page(&fixture("scan.pdf"), 1).unwrap();
        for value in invoice {
            assert!(
                normalised(&page).contains(value),
                "scan.pdf: {value:?} not in {page:?}"
            );
        }
    }

    /// German umlauts and ß with the German language data next to the English.
    #[test]
    fn ocr_reads_german_with_eng_plus_deu() {
        let expected = &truth("card-de.png")[0];
        let german = Tesseract::load("eng+deu").unwrap();
        let read = german.read_image(&fixture("card-de.png")).unwrap();
        let (cer, word_accuracy) = score(expected, &read[0]);
        let english = engine().read_image(&fixture("card-de.png")).unwrap();
        let (english_cer, _) = score(expected, &english[0]);
        println!(
            "card-de.png: eng+deu CER {:.2}%, words {:.1}%; eng alone CER {:.2}%",
            cer * 100.0,
            word_accuracy * 100.0,
            english_cer * 100.0
        );
        assert!(cer <= 0.01 && word_accuracy >= 0.95, "{read:?}");
    }

    #[test]
    fn ocr_unavailable_is_a_clean_error() {
        let mut config = TesseractConfig::new("eng");
        config.library = Some(PathBuf::from("/nonexistent/libtesseract.so.5"));
        let error = Tesseract::load_with(config).unwrap_err();
        assert!(matches!(error, OcrLoadError::Library(_)), "{error:?}");
        assert!(error.to_string().contains("scripts/install-ocr"), "{error}");

        let error = Tesseract::load("zzz").unwrap_err();
        assert!(matches!(error, OcrLoadError::Languages(_)), "{error:?}");
        for invalid in ["", "eng+", "eng deu", "../eng", "eng;rm"] {
            let error = Tesseract::load(invalid).unwrap_err();
            assert_eq!(error, OcrLoadError::InvalidLanguages(invalid.into()));
        }
        let both = Tesseract::load("eng+deu").unwrap();
        assert_eq!(both.languages(), "eng+deu");
        assert!(both.version().starts_with(['4', '5']), "{}", both.version());
    }

    /// A PNG header that claims a huge image: refused before any pixel memory is taken.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        fn crc(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &byte in bytes {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            png.extend((data.len() as u32).to_be_bytes());
            let body = [kind, data].concat();
            png.extend(&body);
            png.extend(crc(&body).to_be_bytes());
        };
        let header = [
            &width.to_be_bytes()[..],
            &height.to_be_bytes(),
            &[8, 0, 0, 0, 0],
        ]
        .concat();
        chunk(b"IHDR", &header);
        chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(b"IEND", &[]);
        png
    }

    /// A one-page PDF drawing one image XObject with `dict` and `content`.
    fn image_pdf(dict: lopdf::Dictionary, content: Vec<u8>) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let image_id = document.add_object(Stream::new(dict, content));
        let page_content = document.add_object(Stream::new(
            dictionary! {},
            b"q 612 0 0 792 0 0 cm /Im0 Do Q".to_vec(),
        ));
        let page_id = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            "Contents" => page_content,
            "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image_id } },
        });
        document.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            }),
        );
        let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        document.trailer.set("Root", catalog);
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn ocr_refuses_corrupt_and_oversized_input_cleanly() {
        let ocr = engine();
        let card = fixture("card.png");
        assert!(matches!(
            ocr.read_image(&card[..card.len() / 2]),
            Err(ExtractError::Corrupt(_))
        ));
        assert_eq!(
            ocr.read_image(b"%PDF-1.4 not an image"),
            Err(ExtractError::Unsupported)
        );
        assert_eq!(ocr.read_image(b""), Err(ExtractError::Unsupported));
        let bomb = ocr.read_image(&png_claiming(100_000, 100_000));
        assert!(
            matches!(bomb, Err(ExtractError::LimitExceeded(_))),
            "{bomb:?}"
        );
        let bomb = ocr.read_image(&png_claiming(19_000, 19_000));
        assert!(
            matches!(bomb, Err(ExtractError::LimitExceeded(_))),
            "{bomb:?}"
        );

        let tiff = fixture("scan.tiff");
        assert!(ocr.read_image(&tiff[..tiff.len() - 2000]).is_err());

        let pdf = fixture("scan.pdf");
        assert!(matches!(
            ocr.read_pdf_page(&pdf, 4),
            Err(ExtractError::Corrupt(_))
        ));
        assert!(matches!(
            ocr.read_pdf_page(b"not a pdf", 1),
            Err(ExtractError::Corrupt(_))
        ));

        // An image that claims 100,000 × 100,000 pixels; and one whose Flate data inflates far
        // beyond its stated size (it is cut off at the size, then read as a blank page).
        let huge = image_pdf(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => 100_000, "Height" => 100_000,
                "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
            },
            vec![0; 16],
        );
        assert!(matches!(
            ocr.read_pdf_page(&huge, 1),
            Err(ExtractError::LimitExceeded(_))
        ));
        let mut zeros = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zeros, &vec![255u8; 64 << 20]).unwrap();
        let inflating = image_pdf(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => 100, "Height" => 100,
                "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "FlateDecode",
            },
            zeros.finish().unwrap(),
        );
        assert_eq!(ocr.read_pdf_page(&inflating, 1), Ok(String::new()));
        let jpeg2000 = image_pdf(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => 10, "Height" => 10,
                "Filter" => "JPXDecode",
            },
            vec![0; 16],
        );
        assert!(matches!(
            ocr.read_pdf_page(&jpeg2000, 1),
            Err(ExtractError::OcrFailed(_))
        ));
    }

    #[test]
    fn ocr_page_time_budget_stops_a_slow_page() {
        let mut config = TesseractConfig::new("eng");
        config.page_timeout = Duration::from_millis(1);
        let slow = Tesseract::load_with(config).unwrap();
        let started = Instant::now();
        let result = slow.read_image(&fixture("invoice.png"));
        assert!(
            matches!(result, Err(ExtractError::LimitExceeded(_))),
            "{result:?}"
        );
        // The budget covers recognition, not the layout analysis before it (a few seconds for
        // an A4 page on a busy machine), so only a generous bound holds here.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn ocr_engines_are_shared_between_threads() {
        let mut config = TesseractConfig::new("eng");
        config.engines = 2;
        let ocr = Arc::new(Tesseract::load_with(config).unwrap());
        let card = Arc::new(fixture("card.png"));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (ocr, card) = (ocr.clone(), card.clone());
                std::thread::spawn(move || ocr.read_image(&card))
            })
            .collect();
        let texts: Vec<_> = readers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect();
        assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
        assert_eq!(
            score(&truth("card.png")[0], &texts[0][0]).1,
            1.0,
            "{:?}",
            texts[0]
        );
    }
}
