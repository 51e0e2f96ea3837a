//! The untrusted-bytes half of OCR — image decoding and taking the images out of PDF pages —
//! never panics: arbitrary bytes and damaged copies of the fixtures give a value or an error.
//! Needs no Tesseract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ocr {
    use std::path::PathBuf;

    use a2v2_extract::ocr::{ImageLimits, decode_image_pages, decode_pdf_page_images};
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ocr")
            .join(name);
        std::fs::read(path).unwrap()
    }

    fn small_limits() -> ImageLimits {
        ImageLimits {
            max_side: 4_000,
            max_pixels: 4_000_000,
            max_pages: 8,
        }
    }

    const IMAGES: &[&str] = &[
        "card.png",
        "card-photo.jpg",
        "card-exif.jpg",
        "card.webp",
        "scan.tiff",
    ];

    #[test]
    fn ocr_decodes_every_fixture() {
        let limits = ImageLimits::default();
        assert_eq!(
            decode_image_pages(&fixture("card.png"), &limits).unwrap(),
            [(1050, 600)]
        );
        // The EXIF orientation turns the sideways photo upright.
        assert_eq!(
            decode_image_pages(&fixture("card-exif.jpg"), &limits).unwrap(),
            [(788, 450)]
        );
        assert_eq!(
            decode_image_pages(&fixture("card.webp"), &limits).unwrap(),
            [(1050, 600)]
        );
        assert_eq!(
            decode_image_pages(&fixture("scan.tiff"), &limits)
                .unwrap()
                .len(),
            2
        );
        let pdf = fixture("scan.pdf");
        for (page, size) in [(1, (2481, 3508)), (2, (945, 1380)), (3, (1050, 600))] {
            let images = decode_pdf_page_images(&pdf, page, &limits).unwrap();
            assert_eq!(images.len(), 1, "page {page}");
            let (w, h) = images[0];
            assert!(
                w.abs_diff(size.0) < 80 && h.abs_diff(size.1) < 80,
                "page {page}: {w}×{h}"
            );
        }
    }

    #[test]
    fn ocr_page_limit_of_a_tiff() {
        let limits = ImageLimits {
            max_pages: 1,
            ..ImageLimits::default()
        };
        let result = decode_image_pages(&fixture("scan.tiff"), &limits);
        assert!(
            matches!(result, Err(a2v2_extract::ExtractError::LimitExceeded(_))),
            "{result:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn ocr_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), prefix in 0usize..5) {
            // Start with each format's magic number so the decoders, not the sniffing, get the bytes.
            let magic: [&[u8]; 5] = [b"\x89PNG\r\n\x1a\n", &[0xFF, 0xD8, 0xFF], b"II*\0", b"RIFF\0\0\0\0WEBP", b"%PDF-1.5\n"];
            let input = [magic[prefix], &bytes].concat();
            let _ = decode_image_pages(&input, &small_limits());
            let _ = decode_pdf_page_images(&input, 1, &small_limits());
        }

        #[test]
        fn ocr_damaged_fixtures_never_panic(
            file in 0usize..IMAGES.len() + 1,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let name = IMAGES.get(file).copied().unwrap_or("scan.pdf");
            let mut bytes = fixture(name);
            for (at, value) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= value;
            }
            bytes.truncate(cut.index(bytes.len()) + 1);
            if name.ends_with(".pdf") {
                for page in 1..=3 {
                    let _ = decode_pdf_page_images(&bytes, page, &small_limits());
                }
            } else {
                let _ = decode_image_pages(&bytes, &small_limits());
            }
        }
    }
}
