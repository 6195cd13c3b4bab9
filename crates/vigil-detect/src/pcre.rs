//! Sigma's `re` values are PCRE. Rust's `regex` crate reads the same syntax for the subset Sigma
//! allows, with one difference that matters: PCRE's `\w`, `\d`, `\s` and `\b` are ASCII, the
//! `regex` crate's are Unicode (and `\w{1,64}` then compiles to megabytes). This rewrites those
//! escapes to their ASCII meaning, inside and outside character classes.

/// Rewrites `\w`, `\d`, `\s` (and `\W`, `\D`, `\S`, `\b`, `\B` outside classes) to ASCII.
pub fn ascii_classes(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 16);
    let chars: Vec<char> = re.chars().collect();
    let mut in_class = false;
    let mut class_start = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                out.push(c);
                break;
            };
            let replacement = match (n, in_class) {
                ('w', false) => Some("[0-9A-Za-z_]"),
                ('w', true) => Some("0-9A-Za-z_"),
                ('d', false) => Some("[0-9]"),
                ('d', true) => Some("0-9"),
                ('s', false) => Some("[\\t\\n\\x0B\\x0C\\r ]"),
                ('s', true) => Some("\\t\\n\\x0B\\x0C\\r "),
                ('W', false) => Some("[^0-9A-Za-z_]"),
                ('D', false) => Some("[^0-9]"),
                ('S', false) => Some("[^\\t\\n\\x0B\\x0C\\r ]"),
                ('b', false) => Some("(?-u:\\b)"),
                ('B', false) => Some("(?-u:\\B)"),
                _ => None,
            };
            match replacement {
                Some(r) => out.push_str(r),
                None => {
                    out.push(c);
                    out.push(n);
                }
            }
            i += 2;
            continue;
        }
        if !in_class && c == '[' {
            in_class = true;
            class_start = i;
        } else if in_class && c == ']' {
            // `[]` and `[^]` at the start of a class are a literal `]`.
            let first =
                i == class_start + 1 || (i == class_start + 2 && chars[class_start + 1] == '^');
            if !first {
                in_class = false;
            }
        } else if in_class && c == '[' && chars.get(i + 1) == Some(&':') {
            // POSIX class `[:alpha:]` inside a class: copy through its closing `:]`.
            if let Some(end) = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars[j + 1] == ']')
            {
                out.extend(&chars[i..end + 2]);
                i = end + 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites() {
        assert_eq!(
            ascii_classes(r"-k\s\w{1,64}"),
            r"-k[\t\n\x0B\x0C\r ][0-9A-Za-z_]{1,64}"
        );
        assert_eq!(ascii_classes(r"[\w.-]+"), r"[0-9A-Za-z_.-]+");
        assert_eq!(ascii_classes(r"\\w"), r"\\w");
        assert_eq!(ascii_classes(r"[]\d]"), r"[]0-9]");
        assert_eq!(ascii_classes(r"\bcmd\b"), r"(?-u:\b)cmd(?-u:\b)");
        assert_eq!(ascii_classes(r"[[:alpha:]\d]"), r"[[:alpha:]0-9]");
        let re = regex::Regex::new(&ascii_classes(r"^\w+\s\d$")).unwrap();
        assert!(re.is_match("abc_1 7"));
        assert!(!re.is_match("äbc 7"));
    }
}
