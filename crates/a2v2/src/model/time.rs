//! Timestamps: stored as unix milliseconds, shown as RFC 3339 UTC.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

pub fn to_rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000)
                .ok()
        })
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn opt_rfc3339(ms: Option<i64>) -> Option<String> {
    ms.map(to_rfc3339)
}

/// Parses an RFC 3339 timestamp into unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `#[serde(with = "rfc3339")]` for a unix-millisecond field shown as RFC 3339.
pub mod rfc3339 {
    pub fn serialize<S: serde::Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::to_rfc3339(*ms))
    }
}

/// `#[serde(with = "opt_rfc3339")]` for an optional unix-millisecond field.
pub mod opt_rfc3339 {
    pub fn serialize<S: serde::Serializer>(
        ms: &Option<i64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => serializer.serialize_str(&super::to_rfc3339(*ms)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_milliseconds() {
        let ms = 1_795_000_000_123;
        assert_eq!(parse_rfc3339(&to_rfc3339(ms)), Some(ms));
        assert!(to_rfc3339(ms).ends_with('Z'));
        assert_eq!(parse_rfc3339("not a date"), None);
    }
}
