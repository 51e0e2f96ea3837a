//! Contact candidates: people named with an e-mail address or phone number near them — e-mail
//! headers (`From: Jane Doe <jane@example.com>`), business cards, signatures and address
//! blocks (a few lines between blank lines holding a name, a title, a company, a phone and an
//! e-mail address).

use std::sync::LazyLock;

use regex::Regex;

use crate::fields::{find_emails, phones};
use crate::{Contact, Page};

const MAX_CONTACTS: usize = 200;

static HEADER: LazyLock<Regex> =
    LazyLock::new(|| crate::static_regex(r"^(?i:from|to|cc|bcc|reply-to|sender):\s*(.+)$"));
static NAMED_ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| crate::static_regex(r#"(?:"([^"]+)"|([^",<>]+?))\s*<([^<>\s]+@[^<>\s]+)>"#));
static COMPANY: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)\b(inc|ltd|llc|llp|plc|gmbh|ag|sa|sas|sarl|bv|nv|oy|ab|as|srl|spa|corp|corporation|company|co|limited|group|holdings|technologies|solutions|consulting|partners|studio|labs|university|institute|bank)\b\.?",
    )
});
static TITLE: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)\b(ceo|cto|cfo|coo|cio|vp|founder|co-founder|owner|president|director|manager|head of|lead|engineer|developer|designer|consultant|analyst|architect|officer|assistant|associate|partner|specialist|coordinator|representative|sales|accountant|attorney|lawyer|professor|doctor|dr\.|scientist|researcher|editor|advisor|administrator|executive|chairman|secretary|geschäftsführer|leiter|berater|ingenieur|directeur|responsable|gérant)\b",
    )
});
static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)^(best|best regards|kind regards|regards|warm regards|many thanks|thanks|thank you|cheers|sincerely|yours sincerely|yours truly|mit freundlichen grüßen|viele grüße|beste grüße|cordialement|bien à vous)[,.!]?$",
    )
});
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    crate::static_regex(
        r"(?i)^(bill to|billed to|invoice to|ship to|sold to|customer|client|contact|attn|attention|rechnungsempfänger|kunde|facturé à|client)\s*[:.]?\s*",
    )
});

/// A line that could be a person's name: two to four capitalised words of letters.
fn person_name(line: &str) -> Option<(String, String)> {
    let line = line.trim().trim_end_matches(',');
    let words: Vec<&str> = line.split_whitespace().collect();
    if !(2..=4).contains(&words.len()) || line.chars().count() > 40 {
        return None;
    }
    let name_word = |w: &&str| {
        let mut chars = w.chars();
        chars.next().is_some_and(char::is_uppercase)
            && w.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’' | '.'))
            && w.chars().filter(|c| c.is_alphabetic()).count() >= 1
    };
    if !words.iter().all(name_word) || COMPANY.is_match(line) || TITLE.is_match(line) {
        return None;
    }
    // All-capital lines are headings more often than names.
    if words.iter().all(|w| {
        w.chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
    }) {
        return None;
    }
    Some((words[0].to_owned(), words[1..].join(" ")))
}

/// `jane.doe@…` → ("Jane", "Doe").
fn name_from_address(address: &str) -> Option<(String, String)> {
    let local = address.split('@').next()?;
    let (first, last) = local.split_once(['.', '_'])?;
    let word = |w: &str| (2..=20).contains(&w.len()) && w.chars().all(|c| c.is_ascii_alphabetic());
    if !word(first) || !word(last) {
        return None;
    }
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| {
                f.to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some((cap(first), cap(last)))
}

fn automated(address: &str) -> bool {
    let local = address
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    [
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
        "notifications",
    ]
    .iter()
    .any(|a| local.contains(a))
}

fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.trim().trim_matches('"').trim();
    if let Some((last, first)) = name.split_once(", ") {
        return (Some(first.trim().to_owned()), Some(last.trim().to_owned()));
    }
    let mut words = name.split_whitespace();
    let first = words.next().map(str::to_owned);
    let rest: Vec<&str> = words.collect();
    (first, (!rest.is_empty()).then(|| rest.join(" ")))
}

struct Collector {
    contacts: Vec<Contact>,
}

impl Collector {
    fn add(&mut self, contact: Contact) {
        if contact.email.is_none() && contact.phone.is_none() {
            return;
        }
        if contact.first_name.is_none()
            && contact.last_name.is_none()
            && contact.company.is_none()
            && contact.email.is_none()
        {
            return;
        }
        let full = self.contacts.len() >= MAX_CONTACTS;
        let same_name = |c: &Contact| {
            c.first_name.is_some()
                && c.first_name == contact.first_name
                && c.last_name == contact.last_name
        };
        let same = self
            .contacts
            .iter_mut()
            .find(|c| match (&c.email, &contact.email) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => c.phone == contact.phone || same_name(c),
                _ => same_name(c),
            });
        match same {
            Some(existing) => {
                let fill = |slot: &mut Option<String>, value: &Option<String>| {
                    if slot.is_none() {
                        slot.clone_from(value);
                    }
                };
                fill(&mut existing.first_name, &contact.first_name);
                fill(&mut existing.last_name, &contact.last_name);
                fill(&mut existing.phone, &contact.phone);
                fill(&mut existing.company, &contact.company);
                fill(&mut existing.job_title, &contact.job_title);
            }
            None if !full => self.contacts.push(contact),
            None => {}
        }
    }
}

/// A block of consecutive lines read as one contact.
fn block_contact(lines: &[&str], region: Option<phonenumber::country::Id>) -> Option<Contact> {
    let mut contact = Contact::default();
    for line in lines {
        let line = LABEL.replace(line.trim(), "");
        let line = line.trim();
        if contact.email.is_none()
            && let Some(email) = find_emails(line).next()
        {
            contact.email = Some(email.to_owned());
        }
        if contact.phone.is_none()
            && let Some(p) = phones::find_phones(line, region).into_iter().next()
        {
            contact.phone = Some(p.e164);
        }
        if contact.first_name.is_none()
            && let Some((first, last)) = person_name(line)
        {
            contact.first_name = Some(first);
            contact.last_name = Some(last);
            continue;
        }
        if contact.job_title.is_none()
            && line.len() <= 60
            && TITLE.is_match(line)
            && !line.contains('@')
        {
            // "CTO, Example GmbH": a title and a company on one line.
            match line.split_once(", ") {
                Some((title, company))
                    if COMPANY.is_match(company) && contact.company.is_none() =>
                {
                    contact.job_title = Some(title.trim().to_owned());
                    contact.company = Some(company.trim().to_owned());
                }
                _ => contact.job_title = Some(line.to_owned()),
            }
            continue;
        }
        if contact.company.is_none()
            && line.len() <= 60
            && COMPANY.is_match(line)
            && !line.contains('@')
        {
            contact.company = Some(line.to_owned());
        }
    }
    if contact.first_name.is_none()
        && let Some((first, last)) = contact.email.as_deref().and_then(name_from_address)
    {
        contact.first_name = Some(first);
        contact.last_name = Some(last);
    }
    if contact.email.as_deref().is_some_and(automated) {
        return None;
    }
    (contact.first_name.is_some() && (contact.email.is_some() || contact.phone.is_some()))
        .then_some(contact)
}

/// The contacts named in a document's pages.
pub(crate) fn find_contacts(pages: &[Page], default_region: Option<&str>) -> Vec<Contact> {
    let region = phones::region(default_region);
    let mut collector = Collector {
        contacts: Vec::new(),
    };
    for page in pages {
        let lines: Vec<&str> = page.text.lines().collect();
        // E-mail headers name people directly.
        for line in &lines {
            let Some(c) = HEADER.captures(line) else {
                continue;
            };
            for m in NAMED_ADDRESS.captures_iter(&c[1]) {
                let address = m[3].to_owned();
                if automated(&address) {
                    continue;
                }
                let name = m.get(1).or(m.get(2)).map_or("", |n| n.as_str());
                let (first, last) = split_name(name);
                collector.add(Contact {
                    first_name: first,
                    last_name: last,
                    email: Some(address),
                    ..Contact::default()
                });
            }
        }
        // Blocks between blank lines (cards, address blocks), and the lines after a sign-off.
        let mut start = 0;
        for i in 0..=lines.len() {
            let end_of_block = i == lines.len() || lines[i].trim().is_empty();
            if !end_of_block {
                continue;
            }
            let block = &lines[start..i];
            start = i + 1;
            if block.is_empty() || block.len() > 10 {
                continue;
            }
            if block.iter().any(|l| HEADER.is_match(l)) {
                continue;
            }
            if let Some(contact) = block_contact(block, region) {
                collector.add(contact);
            }
        }
        for (i, line) in lines.iter().enumerate() {
            if SIGN_OFF.is_match(line.trim()) {
                let tail: Vec<&str> = lines[i + 1..]
                    .iter()
                    .take(7)
                    .copied()
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                if let Some(contact) = block_contact(&tail, region) {
                    collector.add(contact);
                }
            }
        }
    }
    collector.contacts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(text: &str, region: Option<&str>) -> Vec<Contact> {
        find_contacts(
            &[Page {
                number: 1,
                text: text.to_owned(),
                ocr: false,
            }],
            region,
        )
    }

    #[test]
    fn business_card() {
        let card =
            "Jane Doe\nSales Director\nACME Widgets Ltd\n+44 20 7946 0958\njane.doe@acme.example\n";
        let c = &contacts(card, None)[0];
        assert_eq!(c.first_name.as_deref(), Some("Jane"));
        assert_eq!(c.last_name.as_deref(), Some("Doe"));
        assert_eq!(c.job_title.as_deref(), Some("Sales Director"));
        assert_eq!(c.company.as_deref(), Some("ACME Widgets Ltd"));
        assert_eq!(c.phone.as_deref(), Some("+442079460958"));
        assert_eq!(c.email.as_deref(), Some("jane.doe@acme.example"));
    }

    #[test]
    fn headers_and_signatures() {
        let mail = "From: \"Smith, John\" <john@example.com>\nTo: Bob Jones <bob@example.org>, noreply@example.com\n\nHi Bob,\nsee you.\n\nBest regards,\nJohn Smith\nCTO, Example GmbH\nPhone: +49 30 1234567\n";
        let found = contacts(mail, None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].first_name.as_deref(), Some("John"));
        assert_eq!(found[0].last_name.as_deref(), Some("Smith"));
        assert_eq!(found[1].email.as_deref(), Some("bob@example.org"));
    }

    #[test]
    fn no_contact_without_a_way_to_reach_them() {
        assert!(contacts("Jane Doe\nSales Director\n", None).is_empty());
        assert!(
            contacts("INVOICE TOTAL\nfoo@example.com\n", None)
                .iter()
                .all(|c| c.first_name.is_none())
        );
    }
}
