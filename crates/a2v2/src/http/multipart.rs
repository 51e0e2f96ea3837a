//! The one part of a `multipart/form-data` body that an upload form sends its file in
//! (RFC 7578): found by its `name`, returned as bytes. Nothing else of the format is needed.

/// The boundary named by a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty() && value.len() <= 70).then(|| value.to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether a part's headers give it the form field name `name`.
fn has_name(headers: &str, name: &str) -> bool {
    headers.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        key.trim().eq_ignore_ascii_case("content-disposition")
            && value.split(';').any(|param| {
                param
                    .split_once('=')
                    .is_some_and(|(k, v)| k.trim() == "name" && v.trim().trim_matches('"') == name)
            })
    })
}

/// The content of the part named `name`, if the body has one.
pub fn part<'a>(body: &'a [u8], boundary: &str, name: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
    let closing = format!("\r\n--{boundary}");
    loop {
        if rest.starts_with(b"--") {
            return None;
        }
        let headers_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..headers_end]);
        let content = &rest[headers_end + 4..];
        let end = find(content, closing.as_bytes())?;
        if has_name(&headers, name) {
            return Some(&content[..end]);
        }
        rest = &content[end + closing.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_named_part_is_found() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary("text/csv"), None);
        let body =
            b"--abc\r\nContent-Disposition: form-data; name=\"on_duplicate\"\r\n\r\nskip\r\n\
            --abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
            Content-Type: text/csv\r\n\r\nEmail\r\na@b.co\r\n\r\n--abc--\r\n";
        assert_eq!(part(body, "abc", "file"), Some(&b"Email\r\na@b.co\r\n"[..]));
        assert_eq!(part(body, "abc", "on_duplicate"), Some(&b"skip"[..]));
        assert_eq!(part(body, "abc", "missing"), None);
        assert_eq!(part(b"--abc\r\nno end", "abc", "file"), None);
    }

    proptest! {
        #[test]
        fn any_body_is_safe(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = part(&body, "x", "file");
        }
    }
}
