//! Photos and scans through the API (SPEC §3 "Documents and extraction"): images of each
//! format, image-only PDFs page by page, a long scan through the queue, and a broken image.
//! OCR is Tesseract as installed by scripts/install-ocr; without it these tests fail (the
//! documents end `failed` with `ocr_unavailable`), they do not skip.

use std::time::{Duration, Instant};

use lopdf::{Document, Object, Stream, dictionary};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::documents::{DOCS, fixture, upload_raw, wait_done, world, world_with};
use crate::harness::Client;

/// The width, height, bit depth and zlib data (the IDAT chunks) of a non-interlaced grayscale
/// PNG: what a PDF image with Flate and PNG predictors holds as it is.
fn png_rows(png: &[u8]) -> (i64, i64, i64, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut at, mut header, mut data) = (8, None, Vec::new());
    while at + 8 <= png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let body = &png[at + 8..at + 8 + length];
        match kind {
            b"IHDR" => {
                let number =
                    |i: usize| i64::from(u32::from_be_bytes(body[i..i + 4].try_into().unwrap()));
                assert_eq!((body[9], body[12]), (0, 0), "grayscale, not interlaced");
                header = Some((number(0), number(4), i64::from(body[8])));
            }
            b"IDAT" => data.extend_from_slice(body),
            _ => {}
        }
        at += 12 + length;
    }
    let (width, height, bits) = header.expect("IHDR");
    (width, height, bits, data)
}

/// A picture as a PDF image object holds it: a grayscale PNG's compressed rows (Flate with
/// PNG predictors), or a grayscale JPEG whole (DCT).
fn pdf_image(picture: &[u8]) -> (i64, i64, lopdf::Dictionary, Vec<u8>) {
    if picture.starts_with(b"\xff\xd8") {
        let (width, height) = jpeg_size(picture);
        let dict = dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => width, "Height" => height,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
        };
        return (width, height, dict, picture.to_vec());
    }
    let (width, height, bits, data) = png_rows(picture);
    let dict = dictionary! {
        "Type" => "XObject", "Subtype" => "Image", "Width" => width, "Height" => height,
        "ColorSpace" => "DeviceGray", "BitsPerComponent" => bits, "Filter" => "FlateDecode",
        "DecodeParms" => dictionary! {
            "Predictor" => 15, "Colors" => 1, "BitsPerComponent" => bits, "Columns" => width,
        },
    };
    (width, height, dict, data)
}

/// The width and height in a baseline grayscale JPEG's frame header.
fn jpeg_size(jpeg: &[u8]) -> (i64, i64) {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        assert_eq!(jpeg[at], 0xff, "a JPEG marker");
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if marker == 0xc0 {
            assert_eq!(jpeg[at + 9], 1, "one component");
            let height = i64::from(u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]));
            let width = i64::from(u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]));
            return (width, height);
        }
        at += 2 + length;
    }
    panic!("no baseline frame header");
}

/// A PDF whose pages are only pictures, as a scanner writes it: page `n` shows
/// `images[pages[n]]` across the whole page (300 dpi), with no text layer. Pages that show
/// the same picture share its image object, so a long scan stays small.
pub(crate) fn scanned_pdf(images: &[&[u8]], pages: &[usize]) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let mut drawn = Vec::new();
    for picture in images {
        let (width, height, dict, data) = pdf_image(picture);
        let image = document.add_object(Stream::new(dict, data));
        let (w, h) = (width as f32 * 72.0 / 300.0, height as f32 * 72.0 / 300.0);
        let content = document.add_object(Stream::new(
            dictionary! {},
            format!("q {w} 0 0 {h} 0 0 cm /Im0 Do Q").into_bytes(),
        ));
        drawn.push((image, content, w, h));
    }
    let kids: Vec<Object> = pages
        .iter()
        .map(|&index| {
            let (image, content, w, h) = drawn[index];
            document
                .add_object(dictionary! {
                    "Type" => "Page",
                    "Parent" => pages_id,
                    "MediaBox" => vec![0.into(), 0.into(), w.into(), h.into()],
                    "Contents" => content,
                    "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image } },
                })
                .into()
        })
        .collect();
    let count = kids.len() as i64;
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).unwrap();
    bytes
}

/// Whitespace-normalised text, as OCR line breaks fall where they may.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that OCR read the document: it succeeded, says `ocr: true` and holds `expected`.
#[track_caller]
fn assert_read(doc: &Value, what: &str, expected: &[&str]) {
    assert_ne!(
        doc["error"]["code"], "ocr_unavailable",
        "{what}: OCR is not available on this machine; install it with scripts/install-ocr: {doc}"
    );
    assert_eq!(doc["status"], "succeeded", "{what}: {doc}");
    assert_eq!(doc["ocr"], true, "{what}: {doc}");
    let text = words(doc["text"].as_str().unwrap_or_default());
    for word in expected {
        assert!(text.contains(word), "{what}: {word:?} not in {text:?}");
    }
}

/// The text of each page, by number, as the dashboard shows a document.
async fn page_texts(owner: &Client, agent: &str, id: &str) -> Vec<(u64, String)> {
    let reply = owner
        .get(&format!("/api/agents/{agent}/documents/{id}"))
        .await;
    reply.expect(200, None);
    reply.body["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| {
            assert_eq!(page["ocr"], true, "{page}");
            (
                page["number"].as_u64().unwrap(),
                words(page["text"].as_str().unwrap()),
            )
        })
        .collect()
}

const CARD: &[&str] = &[
    "Anna Schmidt",
    "Northwind Logistics",
    "anna.schmidt@northwind-logistics.com",
];

/// What OCR reads reliably on the smaller, noisier photo of the card.
const SMALL_CARD: &[&str] = &["Anna Schmidt", "Northwind"];

#[tokio::test]
async fn documents_ocr_reads_png_jpeg_tiff_and_webp_uploads() {
    let w = world().await;
    for (file, content_type, expected) in [
        ("card.png", "image/png", CARD),
        (
            "card-small.jpg",
            "image/jpeg",
            &["Anna Schmidt", "Northwind"][..],
        ),
        ("card.webp", "image/webp", CARD),
        (
            "scan.tiff",
            "image/tiff",
            &["INV-2026-0042", "CORNER CAFE", "TOTAL EUR"][..],
        ),
    ] {
        // Sent as a generic type: the format is told by the bytes.
        let reply = upload_raw(
            &w.server,
            &w.key,
            &format!("/v1/documents?filename={file}"),
            "application/octet-stream",
            fixture(file),
        )
        .await;
        reply.expect(201, None);
        assert_eq!(reply.body["content_type"], content_type, "{}", reply.text);
        assert_read(&reply.body, file, expected);
    }
    let list = w
        .server
        .v1(Method::GET, "/v1/documents?status=succeeded", &w.key, None)
        .await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        4,
        "{}",
        list.text
    );

    // The two fax pages of the TIFF are pages 1 and 2, and so are the fields found on them.
    let tiff = &list.body["data"][3];
    assert_eq!(tiff["filename"], "scan.tiff");
    assert_eq!(tiff["page_count"], 2);
    let id = tiff["id"].as_str().unwrap();
    let pages = page_texts(&w.owner, &w.agent, id).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].0, 1);
    assert!(pages[0].1.contains("INV-2026-0042"), "{pages:?}");
    assert!(!pages[0].1.contains("CORNER CAFE"), "{pages:?}");
    assert_eq!(pages[1].0, 2);
    assert!(pages[1].1.contains("CORNER CAFE"), "{pages:?}");
}

#[tokio::test]
async fn documents_ocr_reads_each_page_of_an_image_only_pdf() {
    let w = world().await;
    let pdf = scanned_pdf(&[&fixture("card.png"), &fixture("card-de.png")], &[0, 1, 0]);
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=scans.pdf",
        "application/pdf",
        pdf,
    )
    .await;
    reply.expect(201, None);
    assert_eq!(reply.body["content_type"], "application/pdf");
    assert_read(&reply.body, "scans.pdf", &["Anna Schmidt", "Stuttgart"]);
    assert_eq!(reply.body["page_count"], 3);
    let id = reply.body["id"].as_str().unwrap();
    let pages = page_texts(&w.owner, &w.agent, id).await;
    let numbers: Vec<u64> = pages.iter().map(|(number, _)| *number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    for (number, text) in &pages {
        let (expected, absent) = if *number == 2 {
            ("j.weiss@mueller-soehne.de", "Anna Schmidt")
        } else {
            ("anna.schmidt@northwind-logistics.com", "Stuttgart")
        };
        assert!(text.contains(expected), "page {number}: {text:?}");
        assert!(!text.contains(absent), "page {number}: {text:?}");
    }
    // Fields carry the page they were read on.
    let mut found: Vec<(String, u64)> = reply.body["fields"]["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["value"].as_str().unwrap().to_owned(),
                e["page"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert!(
        found.contains(&("j.weiss@mueller-soehne.de".into(), 2)),
        "{found:?}"
    );
    assert!(
        found.contains(&("anna.schmidt@northwind-logistics.com".into(), 1)),
        "{found:?}"
    );
}

#[tokio::test]
async fn documents_ocr_a_broken_image_fails_cleanly_and_the_server_carries_on() {
    let w = world().await;
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=photo.png",
        "image/png",
        broken,
    )
    .await;
    reply.expect(201, None);
    assert_eq!(reply.body["content_type"], "image/png");
    assert_eq!(reply.body["status"], "failed", "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], "corrupt", "{}", reply.text);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.ends_with('.') && message.len() > 20, "{message}");
    assert_eq!(reply.body["text"], "", "{}", reply.text);

    let health = reqwest::get(format!("{}/healthz", w.server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=card.png",
        "image/png",
        fixture("card.png"),
    )
    .await;
    reply.expect(201, None);
    assert_read(&reply.body, "card.png after the broken one", CARD);
}

#[tokio::test]
async fn documents_ocr_a_40_page_scan_is_read_through_the_queue() {
    // A scan this long is usually megabytes; the small limit makes this one queue the same way.
    let w = world_with(&["--extraction-inline-bytes", "4096"]).await;
    // A small photo of a card on every page keeps the OCR time per page low.
    let pdf = scanned_pdf(&[&fixture("card-small.jpg")], &[0; 40]);
    assert!(pdf.len() < 64 * 1024, "{} bytes", pdf.len());
    let started = Instant::now();
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=scan-40.pdf",
        "application/pdf",
        pdf,
    )
    .await;
    reply.expect(202, None);
    assert_eq!(reply.body["status"], "processing");
    let id = reply.body["id"].as_str().unwrap();
    let done = wait_done(&w.server, &w.key, id, Duration::from_secs(240)).await;
    println!("40 scanned pages read in {:?}", started.elapsed());
    assert_read(&done.body, "scan-40.pdf", SMALL_CARD);
    assert_eq!(done.body["page_count"], 40);
    let pages = page_texts(&w.owner, &w.agent, id).await;
    assert_eq!(pages.len(), 40);
    for (index, (number, text)) in pages.iter().enumerate() {
        assert_eq!(*number, index as u64 + 1);
        assert!(text.contains("Anna Schmidt"), "page {number}: {text:?}");
    }
    let (_, reader) = w.owner.create_key(&w.agent, &DOCS[1..2]).await;
    let got = w
        .server
        .v1(Method::GET, &format!("/v1/documents/{id}"), &reader, None)
        .await;
    got.expect(200, None);
    assert_eq!(got.body["pages"].as_array().unwrap().len(), 40);
}
