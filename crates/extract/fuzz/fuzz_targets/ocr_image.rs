//! Image files and scanned PDF pages as OCR receives them: decoding, orientation, limits and
//! taking a page's images out of a PDF must never panic or allocate beyond the limits.
#![no_main]

use a2v2_extract::ocr::{ImageLimits, decode_image_pages, decode_pdf_page_images};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ImageLimits { max_side: 4_000, max_pixels: 4_000_000, max_pages: 8 };
    let _ = decode_image_pages(data, &limits);
    let _ = decode_pdf_page_images(data, 1, &limits);
});
