//! Document extraction over bytes: format detection, text in reading order, OCR of images and
//! scanned pages, and the fields and contacts found in the text. Pure: no HTTP, no database,
//! no files; every entry point takes bytes and returns values or an [`ExtractError`].

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
