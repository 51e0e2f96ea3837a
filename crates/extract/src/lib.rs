//! Document extraction over bytes: format detection, text in reading order, OCR of images and
//! scanned pages, and the fields and contacts found in the text. Pure: no HTTP, no database,
//! no files; every entry point takes bytes and returns values or an [`ExtractError`].

mod budget;
mod contacts;
mod decode;
mod detect;
mod docx;
mod email;
mod fields;
mod html;
mod pdf;
mod pipeline;
#[cfg(test)]
mod properties;
mod schema;
mod tabular;
#[doc(hidden)]
pub mod testpdf;

pub use detect::detect;

/// Compiles one of the library's constant patterns (every one is exercised by unit tests).
#[allow(clippy::expect_used)]
fn static_regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("constant pattern")
}
pub use fields::find_fields;
pub use pipeline::{PAGE_SEPARATOR, extract};

/// Why a document could not be extracted. `code` is stable and reaches API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the file's format is not supported")]
    Unsupported,
    #[error("the document is encrypted or password-protected")]
    Encrypted,
    #[error("the document is damaged and cannot be read: {0}")]
    Corrupt(String),
    #[error("the document exceeds a processing limit: {0}")]
    LimitExceeded(String),
    #[error("text recognition (OCR) is not available on this server")]
    OcrUnavailable,
    #[error("text recognition failed: {0}")]
    OcrFailed(String),
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported => "unsupported_format",
            Self::Encrypted => "encrypted",
            Self::Corrupt(_) => "corrupt",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::OcrUnavailable => "ocr_unavailable",
            Self::OcrFailed(_) => "ocr_failed",
        }
    }
}

/// Reads the text of page images. The extraction pipeline calls it for image files and for
/// PDF pages without a text layer; `None` in the options means OCR is unavailable.
pub trait Ocr: Send + Sync {
    /// The text of each page of an image file (PNG, JPEG, TIFF — one entry per frame — WebP).
    fn read_image(&self, bytes: &[u8]) -> Result<Vec<String>, ExtractError>;
    /// The text of one page (1-based) of a PDF, read from the page's image.
    fn read_pdf_page(&self, pdf: &[u8], page_number: u32) -> Result<String, ExtractError>;
}

/// A format the library recognises from a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Docx,
    Html,
    Text,
    Csv,
    Email,
    Png,
    Jpeg,
    Tiff,
    Webp,
}

/// Bounds on the work one document may cost; exceeding one is [`ExtractError::LimitExceeded`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_pages: u32,
    /// Total bytes a container (DOCX ZIP, e-mail attachments) may expand to.
    pub max_expanded_bytes: u64,
    pub max_text_chars: usize,
    /// Wall-clock time one extraction may take (checked between units of work: pages,
    /// parts, attachments), so a pathological file fails instead of holding a worker.
    pub max_duration: std::time::Duration,
    /// How deep e-mails attached to e-mails are followed.
    pub max_depth: u32,
}

/// What the caller asks of one extraction.
#[derive(Clone, Default)]
pub struct Options {
    /// `None` when OCR is unavailable: images then fail with [`ExtractError::OcrUnavailable`]
    /// and PDF pages without a text layer stay empty.
    pub ocr: Option<std::sync::Arc<dyn Ocr>>,
    pub limits: Limits,
    /// The client's `schema` part.
    pub schema: Option<Schema>,
    /// The client's file name, a hint only (e.g. `.csv` for comma-separated text).
    pub filename: Option<String>,
    /// ISO 3166 region (e.g. `GB`) for phone numbers written without a country code;
    /// `None` finds only numbers written in international form.
    pub default_region: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pages: 2_000,
            max_expanded_bytes: 256 << 20,
            max_text_chars: 20_000_000,
            max_duration: std::time::Duration::from_secs(60),
            max_depth: 3,
        }
    }
}

/// The text of one page (1-based). Formats without pages have a single page 1.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    pub number: u32,
    pub text: String,
    /// True when this page's text was read by OCR.
    pub ocr: bool,
}

/// One value found in the text, as SPEC's `fields` entries: `raw` only where it differs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    pub value: String,
    pub page: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Amount {
    pub value: String,
    pub currency: Option<String>,
    pub page: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub page: u32,
}

/// SPEC's `fields` object.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fields {
    pub emails: Vec<Found>,
    pub phones: Vec<Found>,
    pub urls: Vec<Found>,
    pub dates: Vec<Found>,
    pub amounts: Vec<Amount>,
    pub key_values: Vec<KeyValue>,
}

/// A person the document names, as SPEC's `contacts` entries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
}

/// Everything extracted from one document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Extraction {
    pub format: Format,
    /// The detected media type, e.g. `application/pdf`.
    pub content_type: &'static str,
    pub pages: Vec<Page>,
    /// The pages' text joined in reading order.
    pub text: String,
    pub ocr: bool,
    pub fields: Fields,
    pub contacts: Vec<Contact>,
    /// One entry per schema field, `null` where not found; empty without a schema.
    pub schema_fields: serde_json::Map<String, serde_json::Value>,
}

/// The client's extraction schema (SPEC §3): named fields, each with a type and the labels
/// that introduce it in a document.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub fields: Vec<SchemaField>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SchemaFieldType,
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaFieldType {
    String,
    Number,
    Date,
    Money,
    Email,
    Phone,
}
