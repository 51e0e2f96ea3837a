//! The extraction pipeline: detect, read each format's text into pages, then find fields,
//! contacts and schema fields over the pages.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::budget::Budget;
use crate::{
    ExtractError, Extraction, Format, Options, Page, decode, detect, fields, html, tabular,
};

/// Deeper HTML is refused: parsing time grows with the square of the depth.
const MAX_HTML_DEPTH: usize = 4_096;

/// Pages are separated by a form feed in [`Extraction::text`], as `pdftotext` does.
pub const PAGE_SEPARATOR: &str = "\n\u{c}";

impl Format {
    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html",
            Self::Text => "text/plain",
            Self::Csv => "text/csv",
            Self::Email => "message/rfc822",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Tiff => "image/tiff",
            Self::Webp => "image/webp",
        }
    }
}

/// Extracts text, fields, contacts and schema fields from a document's bytes.
///
/// Never panics: a panic inside a parser becomes [`ExtractError::Corrupt`].
pub fn extract(bytes: &[u8], options: &Options) -> Result<Extraction, ExtractError> {
    catch_unwind(AssertUnwindSafe(|| extract_inner(bytes, options))).unwrap_or_else(|_| {
        Err(ExtractError::Corrupt(
            "the document's structure could not be parsed".into(),
        ))
    })
}

fn extract_inner(bytes: &[u8], options: &Options) -> Result<Extraction, ExtractError> {
    let format = detect(bytes, options.filename.as_deref()).ok_or(ExtractError::Unsupported)?;
    let mut budget = Budget::new(&options.limits);
    let pages = read_pages(bytes, format, options, &mut budget, 0)?;
    let text = pages
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(PAGE_SEPARATOR);
    let region = options.default_region.as_deref();
    let fields = fields::find_fields(&pages, region);
    let contacts = crate::contacts::find_contacts(&pages, region);
    let schema_fields = match &options.schema {
        Some(schema) => crate::schema::schema_fields(schema, &text, &fields, region),
        None => serde_json::Map::new(),
    };
    budget.check_time()?;
    Ok(Extraction {
        format,
        content_type: format.content_type(),
        ocr: pages.iter().any(|p| p.ocr),
        text,
        pages,
        fields,
        contacts,
        schema_fields,
    })
}

/// Line breaks as `\n`, no trailing spaces, at most one empty line in a row.
pub(crate) fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.split('\n') {
        let line = line.trim_end_matches(['\r', ' ', '\t', '\u{a0}']);
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank = 0;
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

fn single_page(text: String, budget: &mut Budget) -> Result<Vec<Page>, ExtractError> {
    budget.text(&text)?;
    Ok(vec![Page {
        number: 1,
        text,
        ocr: false,
    }])
}

/// The pages of one document; `depth` counts the e-mails this one is attached to.
pub(crate) fn read_pages(
    bytes: &[u8],
    format: Format,
    options: &Options,
    budget: &mut Budget,
    depth: u32,
) -> Result<Vec<Page>, ExtractError> {
    budget.check_time()?;
    match format {
        Format::Text => {
            let text = decode::decode_text(bytes, None).ok_or(ExtractError::Unsupported)?;
            single_page(tidy(&text), budget)
        }
        Format::Csv => {
            let text = decode::decode_text(bytes, None).ok_or(ExtractError::Unsupported)?;
            single_page(tidy(&tabular::csv_to_text(&text)), budget)
        }
        Format::Html => {
            let declared = decode::html_declared_charset(bytes);
            let text = decode::decode_text(bytes, declared).ok_or(ExtractError::Unsupported)?;
            if html::nesting_depth(&text) > MAX_HTML_DEPTH {
                return Err(ExtractError::LimitExceeded(format!(
                    "the HTML nests elements more than {MAX_HTML_DEPTH} levels deep"
                )));
            }
            single_page(tidy(&html::html_to_text(&text)), budget)
        }
        Format::Png | Format::Jpeg | Format::Tiff | Format::Webp => {
            let ocr = options.ocr.as_ref().ok_or(ExtractError::OcrUnavailable)?;
            let texts = ocr.read_image(bytes)?;
            let mut pages = Vec::with_capacity(texts.len());
            for (i, text) in texts.into_iter().enumerate() {
                let text = tidy(&text);
                budget.text(&text)?;
                pages.push(Page {
                    number: i as u32 + 1,
                    text,
                    ocr: true,
                });
            }
            Ok(pages)
        }
        Format::Pdf => crate::pdf::read_pdf(bytes, options, budget),
        Format::Docx => {
            let text = crate::docx::read_docx(bytes, budget)?;
            single_page(text, budget)
        }
        Format::Email => {
            let text = crate::email::read_email(bytes, options, budget, depth)?;
            single_page(text, budget)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_csv_and_html_documents() {
        let options = Options::default();
        let e = extract(b"Hello\r\nInvoice Number: 7\r\n\r\n\r\nbye  ", &options).unwrap();
        assert_eq!(e.format, Format::Text);
        assert_eq!(e.text, "Hello\nInvoice Number: 7\n\nbye");
        assert_eq!(e.pages.len(), 1);
        let e = extract(b"a,b\n1,2\n3,4\n", &options).unwrap();
        assert_eq!(
            (e.format, e.text.as_str()),
            (Format::Csv, "a\tb\n1\t2\n3\t4")
        );
        let e = extract(b"<p>Hi &amp; bye</p>", &options).unwrap();
        assert_eq!(
            (e.format, e.content_type, e.text.as_str()),
            (Format::Html, "text/html", "Hi & bye")
        );
        assert_eq!(extract(b"", &options).unwrap().text, "");
        let deep = "<div>".repeat(50_000);
        assert_eq!(
            extract(deep.as_bytes(), &options).unwrap_err().code(),
            "limit_exceeded"
        );
    }

    #[test]
    fn the_time_budget_is_enforced() {
        let mut options = Options::default();
        options.limits.max_duration = std::time::Duration::ZERO;
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(
            extract(b"some text", &options).unwrap_err().code(),
            "limit_exceeded"
        );
    }

    struct FakeOcr;

    impl crate::Ocr for FakeOcr {
        fn read_image(&self, _: &[u8]) -> Result<Vec<String>, ExtractError> {
            Ok(vec![
                "page one".into(),
                "page two mail a@example.com".into(),
            ])
        }
        fn read_pdf_page(&self, _: &[u8], n: u32) -> Result<String, ExtractError> {
            Ok(format!("scanned page {n}"))
        }
    }

    #[test]
    fn ocr_reads_images_and_pages_without_text() {
        let options = Options {
            ocr: Some(std::sync::Arc::new(FakeOcr)),
            ..Options::default()
        };
        let e = extract(b"\x89PNG\r\n\x1a\n\0\0\0\0", &options).unwrap();
        assert!(e.ocr);
        assert_eq!(e.pages.len(), 2);
        assert_eq!(e.fields.emails[0].page, 2);
        let pdf = crate::testpdf::pdf_with_pages(&[
            vec![],
            vec![crate::testpdf::Line {
                x: 50.0,
                y: 800.0,
                text: "A page with a real text layer on it",
            }],
        ]);
        let e = extract(&pdf, &options).unwrap();
        assert_eq!(
            (e.pages[0].ocr, e.pages[0].text.as_str()),
            (true, "scanned page 1")
        );
        assert!(!e.pages[1].ocr);
    }

    #[test]
    fn images_need_ocr() {
        let err = extract(b"\x89PNG\r\n\x1a\n\0\0\0\0", &Options::default()).unwrap_err();
        assert_eq!(err, ExtractError::OcrUnavailable);
        assert_eq!(
            extract(
                b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
                &Options::default()
            )
            .unwrap_err()
            .code(),
            "unsupported_format"
        );
    }
}
