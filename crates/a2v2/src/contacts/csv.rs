//! Reading CSV files people export from spreadsheets and other CRMs: the text encoding
//! (UTF-8 with or without a byte-order mark, UTF-16 with a mark, otherwise Windows-1252), the
//! delimiter (comma, semicolon or tab, whichever the header row uses most) and RFC 4180
//! records (quoted fields with doubled quotes and line breaks; CRLF, LF or CR line ends).
//! Pure functions over bytes: they never fail on input, they report what they could not read.

/// The characters Windows-1252 puts at 0x80–0x9F (where Latin-1 has control characters);
/// the five bytes it leaves undefined decode to U+FFFD.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{FFFD}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{FFFD}', 'Ž',
    '\u{FFFD}', '\u{FFFD}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{FFFD}',
    'ž', 'Ÿ',
];

/// The encoding a file was read in, as the import report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf8Bom => "utf-8-bom",
            Self::Utf16Le => "utf-16le",
            Self::Utf16Be => "utf-16be",
            Self::Windows1252 => "windows-1252",
        }
    }
}

fn utf16(bytes: &[u8], little_endian: bool) -> String {
    let units = bytes.chunks(2).map(|pair| match (pair, little_endian) {
        ([a, b], true) => u16::from_le_bytes([*a, *b]),
        ([a, b], false) => u16::from_be_bytes([*a, *b]),
        _ => 0xFFFD,
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{FFFD}'))
        .collect()
}

/// The file's text. Bytes that are valid UTF-8 are read as UTF-8 (a byte-order mark is
/// dropped); a UTF-16 byte-order mark selects UTF-16; anything else is Windows-1252, the
/// encoding Excel on Windows writes "CSV" in, of which Latin-1 is a subset.
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (
            String::from_utf8_lossy(rest).into_owned(),
            Encoding::Utf8Bom,
        );
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return (utf16(rest, true), Encoding::Utf16Le);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return (utf16(rest, false), Encoding::Utf16Be);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), Encoding::Utf8),
        Err(_) => {
            let text = bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
                    _ => char::from(b),
                })
                .collect();
            (text, Encoding::Windows1252)
        }
    }
}

/// The delimiter the header row uses most, outside quotes: `,`, `;` or tab (comma on a tie).
pub fn sniff_delimiter(text: &str) -> char {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    [',', ';', '\t'][best]
}

/// What could not be read: a quoted field that is never closed runs to the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unterminated {
    /// The record it starts in, counted from 0 (the header).
    pub record: usize,
}

/// Every record of `text`: fields split at `delimiter`, quotes removed. A line with nothing on
/// it is an empty record (`[]`), except after the last line break. A quote inside an unquoted
/// field is kept as written, like spreadsheets do.
pub fn records(text: &str, delimiter: char) -> (Vec<Vec<String>>, Option<Unterminated>) {
    let mut out = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    // Whether the current record has any character yet (so that "" is one empty field).
    let mut started = false;
    // A quote opens a quoted field only as the field's first character.
    let mut field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' && field_start {
            started = true;
            field_start = false;
            let mut closed = false;
            while let Some(q) = chars.next() {
                if q == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    field.push(q);
                }
            }
            if !closed {
                record.push(std::mem::take(&mut field));
                out.push(record);
                let at = out.len() - 1;
                return (out, Some(Unterminated { record: at }));
            }
            // Anything between the closing quote and the delimiter is kept, as written.
            continue;
        }
        match c {
            c if c == delimiter => {
                started = true;
                field_start = true;
                record.push(std::mem::take(&mut field));
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if started {
                    record.push(std::mem::take(&mut field));
                }
                out.push(std::mem::take(&mut record));
                started = false;
                field_start = true;
            }
            _ => {
                started = true;
                field_start = false;
                field.push(c);
            }
        }
    }
    if started {
        record.push(field);
        out.push(record);
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodings_are_recognised() {
        assert_eq!(decode(b"a,b"), ("a,b".into(), Encoding::Utf8));
        assert_eq!(
            decode(b"\xEF\xBB\xBFE-mail"),
            ("E-mail".into(), Encoding::Utf8Bom)
        );
        assert_eq!(
            decode(b"Ren\xE9e \x80 \x93x\x94"),
            ("Renée € “x”".into(), Encoding::Windows1252)
        );
        assert_eq!(
            decode(b"\xFF\xFEa\x00,\x00\xE9\x00"),
            ("a,é".into(), Encoding::Utf16Le)
        );
        assert_eq!(
            decode(b"\xFE\xFF\x00a\x00,"),
            ("a,".into(), Encoding::Utf16Be)
        );
        assert_eq!(decode(b"\x81").0, "\u{FFFD}");
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter("a,b,c\n1;2;3;4;5"), ',');
        assert_eq!(sniff_delimiter("Name;E-mail;Phone"), ';');
        assert_eq!(sniff_delimiter("Name\tE-mail"), '\t');
        assert_eq!(sniff_delimiter("\"a;b\",c"), ',');
        assert_eq!(sniff_delimiter("Email"), ',');
    }

    fn rec(text: &str) -> Vec<Vec<String>> {
        let (records, error) = records(text, ',');
        assert_eq!(error, None);
        records
    }

    #[test]
    fn records_follow_rfc_4180() {
        assert_eq!(rec("a,b\r\n1,2\r\n"), [vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(rec("a,b\n1,2"), [vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(rec("a\r1\r"), [vec!["a"], vec!["1"]]);
        assert_eq!(
            rec("\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n"),
            [vec!["x, y", "say \"hi\"", "two\nlines"]]
        );
        assert_eq!(rec("a,,\n"), [vec!["a", "", ""]]);
        assert_eq!(rec("a\n\nb\n"), [vec!["a"], vec![], vec!["b"]]);
        assert_eq!(rec("\"\"\n"), [vec![""]]);
        assert_eq!(rec("5\" tall,x"), [vec!["5\" tall", "x"]]);
        assert_eq!(rec("\"a\"b,c"), [vec!["ab", "c"]]);
        assert_eq!(rec(""), Vec::<Vec<String>>::new());
    }

    #[test]
    fn an_unclosed_quote_is_reported_with_its_record() {
        let (records, error) = records("a\n1\n\"open,2\n3\n", ',');
        assert_eq!(error, Some(Unterminated { record: 2 }));
        assert_eq!(records.len(), 3);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_and_parse(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (text, _) = decode(&bytes);
            let delimiter = sniff_delimiter(&text);
            let _ = records(&text, delimiter);
        }

        #[test]
        fn written_fields_read_back(rows in proptest::collection::vec(
            proptest::collection::vec("[a-z,\"\n ]{0,8}", 1..5), 1..5)
        ) {
            let text: String = rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                        .collect::<Vec<_>>()
                        .join(",")
                        + "\r\n"
                })
                .collect();
            let (read, error) = records(&text, ',');
            prop_assert_eq!(error, None);
            prop_assert_eq!(read, rows);
        }
    }
}
