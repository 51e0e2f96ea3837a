//! The work one extraction may still do: a deadline, bytes a container may still expand to,
//! and characters of text still allowed. Shared by nested extractions (e-mail attachments).

use std::time::Instant;

use crate::{ExtractError, Limits};

pub(crate) struct Budget {
    deadline: Instant,
    expanded_left: u64,
    chars_left: usize,
    pub(crate) limits: Limits,
}

impl Budget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            deadline: Instant::now() + limits.max_duration,
            expanded_left: limits.max_expanded_bytes,
            chars_left: limits.max_text_chars,
            limits: limits.clone(),
        }
    }

    /// Fails once the time budget is spent; called between units of work.
    pub(crate) fn check_time(&self) -> Result<(), ExtractError> {
        if Instant::now() > self.deadline {
            return Err(ExtractError::LimitExceeded(format!(
                "extraction took longer than {} seconds",
                self.limits.max_duration.as_secs()
            )));
        }
        Ok(())
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Accounts for `bytes` of decompressed container content.
    pub(crate) fn expand(&mut self, bytes: u64) -> Result<(), ExtractError> {
        if bytes > self.expanded_left {
            return Err(ExtractError::LimitExceeded(format!(
                "the document expands to more than {} bytes",
                self.limits.max_expanded_bytes
            )));
        }
        self.expanded_left -= bytes;
        Ok(())
    }

    pub(crate) fn expanded_left(&self) -> u64 {
        self.expanded_left
    }

    /// Accounts for the characters of extracted text.
    pub(crate) fn text(&mut self, text: &str) -> Result<(), ExtractError> {
        let n = text.chars().count();
        if n > self.chars_left {
            return Err(ExtractError::LimitExceeded(format!(
                "the document has more than {} characters of text",
                self.limits.max_text_chars
            )));
        }
        self.chars_left -= n;
        Ok(())
    }
}
