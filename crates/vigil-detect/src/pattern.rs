//! Sigma strings: literal text with `*` and `?` wildcards (and `\` escapes), plus the windash
//! character class, and how such a string is classified for the shared matchers.

/// The characters `windash` treats as interchangeable.
pub const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// One piece of a Sigma string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Any,
    /// `?`: exactly one character.
    One,
    /// One of [`DASHES`] (from `windash`).
    Dash,
}

/// A Sigma string value after escape processing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Glob {
    parts: Vec<Part>,
}

/// How a glob can be matched: the shapes the shared literal matcher handles directly, and the
/// rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The whole value equals the text.
    Exact(String),
    /// The value starts with the text.
    Prefix(String),
    /// The value ends with the text.
    Suffix(String),
    /// The value contains the text.
    Contains(String),
    /// `*`: any value at all.
    AnyValue,
    /// Anything else (inner wildcards, `?`, dashes): a regular expression decides, with the
    /// longest literal piece (if any) as a prefilter.
    Complex,
}

impl Glob {
    /// Parses Sigma's plain-value syntax: `*` and `?` are wildcards; `\*`, `\?` and `\\` are
    /// the literal characters; any other backslash is literal.
    pub fn parse(s: &str) -> Glob {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        lit.push(n);
                        chars.next();
                    }
                    _ => lit.push('\\'),
                },
                '*' | '?' => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(if c == '*' { Part::Any } else { Part::One });
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Glob::from_parts(parts)
    }

    /// A glob matching exactly `s` (no wildcard interpretation).
    pub fn literal(s: &str) -> Glob {
        Glob::from_parts(vec![Part::Lit(s.to_owned())])
    }

    /// Builds a glob from parts, merging adjacent literals and collapsing repeated `*`.
    pub fn from_parts(parts: Vec<Part>) -> Glob {
        let mut out: Vec<Part> = Vec::with_capacity(parts.len());
        for p in parts {
            match (out.last_mut(), p) {
                (_, Part::Lit(s)) if s.is_empty() => {}
                (Some(Part::Lit(prev)), Part::Lit(s)) => prev.push_str(&s),
                (Some(Part::Any), Part::Any) => {}
                (_, p) => out.push(p),
            }
        }
        Glob { parts: out }
    }

    /// The parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text if the glob has no wildcard.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Puts `*` in front unless one is there.
    pub fn prepend_any(&mut self) {
        if self.parts.first() != Some(&Part::Any) {
            self.parts.insert(0, Part::Any);
        }
    }

    /// Puts `*` at the end unless one is there.
    pub fn append_any(&mut self) {
        if self.parts.last() != Some(&Part::Any) {
            self.parts.push(Part::Any);
        }
    }

    /// Applies `windash`: in each literal piece, a `-` or `/` that starts a word (no word
    /// character before it, a word character after it) becomes [`Part::Dash`] (pySigma's
    /// `\B[-/]\b`).
    pub fn windash(&self) -> Glob {
        let mut parts = Vec::new();
        for p in &self.parts {
            let Part::Lit(s) = p else {
                parts.push(p.clone());
                continue;
            };
            let chars: Vec<char> = s.chars().collect();
            let mut lit = String::new();
            for (i, &c) in chars.iter().enumerate() {
                let before_is_word = i > 0 && is_word(chars[i - 1]);
                let after_is_word = chars.get(i + 1).is_some_and(|&n| is_word(n));
                if (c == '-' || c == '/') && !before_is_word && after_is_word {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Dash);
                } else {
                    lit.push(c);
                }
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(lit));
            }
        }
        Glob::from_parts(parts)
    }

    /// Replaces each [`Part::Dash`] by each of [`DASHES`], if that gives at most `max` globs.
    pub fn expand_dashes(&self, max: usize) -> Option<Vec<Glob>> {
        let n = self.parts.iter().filter(|p| **p == Part::Dash).count();
        let count = 5usize.checked_pow(u32::try_from(n).ok()?)?;
        if count > max {
            return None;
        }
        let mut out: Vec<Vec<Part>> = vec![Vec::new()];
        for p in &self.parts {
            if *p == Part::Dash {
                let mut next = Vec::with_capacity(out.len() * DASHES.len());
                for prefix in &out {
                    for d in DASHES {
                        let mut v = prefix.clone();
                        v.push(Part::Lit(d.to_string()));
                        next.push(v);
                    }
                }
                out = next;
            } else {
                for v in &mut out {
                    v.push(p.clone());
                }
            }
        }
        Some(out.into_iter().map(Glob::from_parts).collect())
    }

    /// The glob's shape (see [`Shape`]).
    pub fn shape(&self) -> Shape {
        match self.parts.as_slice() {
            [] => Shape::Exact(String::new()),
            [Part::Lit(s)] => Shape::Exact(s.clone()),
            [Part::Lit(s), Part::Any] => Shape::Prefix(s.clone()),
            [Part::Any, Part::Lit(s)] => Shape::Suffix(s.clone()),
            [Part::Any, Part::Lit(s), Part::Any] => Shape::Contains(s.clone()),
            [Part::Any] => Shape::AnyValue,
            _ => Shape::Complex,
        }
    }

    /// The longest literal piece, for prefiltering a complex glob.
    pub fn longest_literal(&self) -> Option<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Lit(s) => Some(s.as_str()),
                _ => None,
            })
            .max_by_key(|s| s.len())
    }

    /// An anchored regular expression equivalent to the glob (`.` matches newlines).
    pub fn to_regex(&self, case_insensitive: bool) -> String {
        let mut re = String::from(if case_insensitive { "(?si)^" } else { "(?s)^" });
        for p in &self.parts {
            match p {
                Part::Lit(s) => re.push_str(&regex::escape(s)),
                Part::Any => re.push_str(".*"),
                Part::One => re.push('.'),
                Part::Dash => re.push_str("[-/\u{2013}\u{2014}\u{2015}]"),
            }
        }
        re.push('$');
        re
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lowercases for case-insensitive comparison (ASCII fast path), one character at a time as
/// event values are ([`crate::fieldmatch::fold_into`]): `str::to_lowercase` would turn a
/// word-final `Σ` into `ς` where a value's `Σ` becomes `σ`, and the rule would miss it.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.chars().flat_map(char::to_lowercase).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_literals_fold_as_event_values_do() {
        for text in ["ΟΔΟΣ", "ΣΑΣ ΟΔΟΣ.", "İstanbul", "Straße KELVIN \u{212a}"] {
            let mut value = String::new();
            crate::fieldmatch::fold_into(text, &mut value);
            assert_eq!(fold(text), value, "{text}");
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(
            Glob::parse("C:\\Windows\\").as_literal().unwrap(),
            "C:\\Windows\\"
        );
        assert_eq!(
            Glob::parse("C:\\\\Windows").as_literal().unwrap(),
            "C:\\Windows"
        );
        assert_eq!(Glob::parse("a\\*b").as_literal().unwrap(), "a*b");
        assert_eq!(Glob::parse("a\\?").as_literal().unwrap(), "a?");
        assert_eq!(
            Glob::parse("\\\\*").parts(),
            &[Part::Lit("\\".into()), Part::Any]
        );
        assert_eq!(Glob::parse("\\\\\\*").as_literal().unwrap(), "\\*");
        assert_eq!(Glob::parse("\\\\\\\\").as_literal().unwrap(), "\\\\");
    }

    #[test]
    fn shapes() {
        assert_eq!(Glob::parse("abc").shape(), Shape::Exact("abc".into()));
        assert_eq!(Glob::parse("abc*").shape(), Shape::Prefix("abc".into()));
        assert_eq!(Glob::parse("*abc").shape(), Shape::Suffix("abc".into()));
        assert_eq!(Glob::parse("*abc**").shape(), Shape::Contains("abc".into()));
        assert_eq!(Glob::parse("*").shape(), Shape::AnyValue);
        assert_eq!(Glob::parse("a*c").shape(), Shape::Complex);
        assert_eq!(Glob::parse("a?c").shape(), Shape::Complex);
        assert_eq!(Glob::parse("*ab*cde*").longest_literal(), Some("cde"));
    }

    #[test]
    fn windash_positions() {
        let g = Glob::parse(" -enc a-b /c --x").windash();
        // " -enc": dash at word start; "a-b": inside a word (not); " /c": yes; "--x": only the
        // second dash starts the word.
        let dashes = g.parts().iter().filter(|p| **p == Part::Dash).count();
        assert_eq!(dashes, 3, "{g:?}");
        assert_eq!(g.expand_dashes(1000).unwrap().len(), 125);
        assert!(g.expand_dashes(100).is_none());
    }

    #[test]
    fn regex_form() {
        let re = regex::Regex::new(&Glob::parse("a*b?c").to_regex(true)).unwrap();
        assert!(re.is_match("AxxBzC"));
        assert!(!re.is_match("AxxBC"));
    }
}
