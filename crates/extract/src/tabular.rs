//! Comma-, semicolon- or tab-separated text: each row becomes one line of tab-separated cells.

/// The number of fields of one line under `delimiter`, quotes respected.
pub(crate) fn count_fields(line: &str, delimiter: u8) -> usize {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(line.as_bytes());
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record.len(),
        _ => 0,
    }
}

/// The delimiter under which the first rows agree best on a field count above one.
fn delimiter_of(text: &str) -> u8 {
    let sample: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(50)
        .collect();
    let mut best = (b',', 0usize);
    for delimiter in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = sample.iter().map(|l| count_fields(l, delimiter)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        if first < 2 {
            continue;
        }
        let agreeing = counts.iter().filter(|c| **c == first).count();
        if agreeing > best.1 {
            best = (delimiter, agreeing);
        }
    }
    best.0
}

/// The rows of CSV text as lines of tab-separated, trimmed cells.
pub(crate) fn csv_to_text(text: &str) -> String {
    let delimiter = delimiter_of(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut out = String::with_capacity(text.len());
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let cells: Vec<String> = record
                    .iter()
                    .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect();
                let line = cells.join("\t");
                out.push_str(line.trim_end());
                out.push('\n');
            }
            Ok(false) => break,
            // A malformed row (e.g. invalid UTF-8 cannot happen: the text is decoded): keep
            // the rest of the file rather than failing the document.
            Err(_) => continue,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_lines() {
        let text = "name,total\n\"Smith, Jane\",\"1,200.00\"\nBob,5\n";
        assert_eq!(
            csv_to_text(text),
            "name\ttotal\nSmith, Jane\t1,200.00\nBob\t5\n"
        );
        assert_eq!(csv_to_text("a;b;c\n1;2;3\n"), "a\tb\tc\n1\t2\t3\n");
        assert_eq!(count_fields("\"a,b\",c", b','), 2);
    }
}
