//! Small validators shared by several resources.

/// Why `email` is not a plausible address, if it is not.
pub fn email_error(email: &str) -> Option<&'static str> {
    if email.chars().count() > 254 {
        return Some("must be at most 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("must be an email address like name@example.com");
    };
    let plausible = !local.is_empty()
        && !local.contains('@')
        && local.chars().count() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    (!plausible).then_some("must be an email address like name@example.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_addresses_and_refuses_the_rest() {
        for ok in ["a@b.co", "first.last+tag@example.co.uk", "jürgen@müller.de"] {
            assert_eq!(email_error(ok), None, "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b..de", "a@b.de\n", "a@@b.de",
        ] {
            assert!(email_error(bad).is_some(), "{bad:?}");
        }
    }
}
