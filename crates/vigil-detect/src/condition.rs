//! The Sigma condition language: `and`, `or`, `not`, parentheses, `1 of X*`, `all of X*`,
//! `N of X*`, `1 of them`, `all of them`.
//!
//! Precedence, least binding first: `or`, `and`, `not`, `x of`, parentheses. Keywords are
//! case-insensitive. v1 aggregations (`| count() by x > 5`) and `near` are rejected with a reason:
//! Sigma v2 expresses them as correlation rules.

use std::fmt;

/// How many of the selected identifiers must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `1 of` / `any of`.
    Any,
    /// `all of`.
    All,
    /// `N of` (at least N).
    AtLeast(usize),
}

/// What `x of` ranges over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfTarget {
    /// `them`: every identifier not starting with `_`.
    Them,
    /// A name pattern with `*` wildcards.
    Pattern(String),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// A search identifier.
    Ident(String),
    /// All must hold.
    And(Vec<Cond>),
    /// Any must hold.
    Or(Vec<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// `x of target`.
    Of(Quantifier, OfTarget),
}

/// Why a condition string is refused. [`ConditionError::is_unsupported`] tells a valid Sigma
/// v1 feature Vigil does not run (the rule is fine, Vigil is not) from a malformed condition.
/// Never worth a retry: the same text fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// A Sigma v1 aggregation (`| count() by x > 5`).
    #[error("v1 aggregation (`| count() …`) is not supported; use a Sigma v2 correlation rule")]
    V1Aggregation,
    /// Sigma v1 `near`.
    #[error("`near` (v1 temporal proximity) is not supported; use a temporal correlation rule")]
    Near,
    /// A character no condition uses.
    #[error("unexpected character `{0}` in condition")]
    Character(char),
    /// `(` closed by something else (the token, quoted).
    #[error("expected `)`, found {0}")]
    ExpectedClose(String),
    /// `(` never closed.
    #[error("missing `)`")]
    MissingClose,
    /// `and` / `or` with nothing before it.
    #[error("`{0}` without a left operand")]
    NoLeftOperand(String),
    /// `0 of …`.
    #[error("`0 of` is not meaningful")]
    ZeroOf,
    /// `x of …` where x is not 1, any, all or a number.
    #[error("`{0} of`: expected 1, all or a number")]
    BadQuantifier(String),
    /// `of` followed by something other than a name (the token, quoted; none at the end).
    #[error("expected a name after `of`{}", .0.as_ref().map(|t| format!(", found {t}")).unwrap_or_default())]
    ExpectedName(Option<String>),
    /// A token where none of its kind can stand (quoted).
    #[error("unexpected {0}")]
    Unexpected(String),
    /// The condition stops where an operand is needed.
    #[error("condition ends too early")]
    EndsEarly,
    /// Text left after a complete condition (the first token, quoted).
    #[error("unexpected {0} after the end of the condition")]
    Trailing(String),
}

impl ConditionError {
    /// Whether the condition is valid Sigma that Vigil does not run (v1 aggregations, `near`),
    /// as opposed to a malformed one.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ConditionError::V1Aggregation | ConditionError::Near)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Pipe,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Open => f.write_str("`(`"),
            Tok::Close => f.write_str("`)`"),
            Tok::Pipe => f.write_str("`|`"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Tok>, ConditionError> {
    let mut toks = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let single = match c {
            '(' => Some(Tok::Open),
            ')' => Some(Tok::Close),
            '|' => Some(Tok::Pipe),
            _ => None,
        };
        if c.is_whitespace() || single.is_some() {
            if !word.is_empty() {
                toks.push(Tok::Word(std::mem::take(&mut word)));
            }
            if let Some(t) = single {
                toks.push(t);
            }
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
            word.push(c);
        } else {
            return Err(ConditionError::Character(c));
        }
    }
    if !word.is_empty() {
        toks.push(Tok::Word(word));
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Cond, ConditionError> {
        let mut items = vec![self.and()?];
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, ConditionError> {
        let mut items = vec![self.not()?];
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, ConditionError> {
        if is_kw(self.peek(), "not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, ConditionError> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    Some(t) => Err(ConditionError::ExpectedClose(t.to_string())),
                    None => Err(ConditionError::MissingClose),
                }
            }
            Some(Tok::Word(w)) => {
                let lower = w.to_ascii_lowercase();
                if matches!(lower.as_str(), "and" | "or") {
                    return Err(ConditionError::NoLeftOperand(w));
                }
                if is_kw(self.peek(), "of") {
                    let quant = match lower.as_str() {
                        "1" | "any" => Quantifier::Any,
                        "all" => Quantifier::All,
                        n => match n.parse::<usize>() {
                            Ok(0) => return Err(ConditionError::ZeroOf),
                            Ok(n) => Quantifier::AtLeast(n),
                            Err(_) => return Err(ConditionError::BadQuantifier(w)),
                        },
                    };
                    self.pos += 1;
                    let target = match self.next() {
                        Some(Tok::Word(t)) if t.eq_ignore_ascii_case("them") => OfTarget::Them,
                        Some(Tok::Word(t)) => OfTarget::Pattern(t),
                        Some(t) => return Err(ConditionError::ExpectedName(Some(t.to_string()))),
                        None => return Err(ConditionError::ExpectedName(None)),
                    };
                    return Ok(Cond::Of(quant, target));
                }
                if lower == "not" || lower == "of" || lower == "them" {
                    return Err(ConditionError::Unexpected(Tok::Word(w).to_string()));
                }
                Ok(Cond::Ident(w))
            }
            Some(t) => Err(ConditionError::Unexpected(t.to_string())),
            None => Err(ConditionError::EndsEarly),
        }
    }
}

/// Parses one condition string.
pub fn parse(text: &str) -> Result<Cond, ConditionError> {
    if text.contains('|') {
        return Err(ConditionError::V1Aggregation);
    }
    let toks = lex(text)?;
    // `near` is a v1 keyword wherever it stands (`a near b` is its usual form): say so rather
    // than "unexpected `near`".
    if toks
        .iter()
        .any(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("near")))
    {
        return Err(ConditionError::Near);
    }
    let mut p = Parser { toks, pos: 0 };
    let c = p.or()?;
    if let Some(t) = p.peek() {
        return Err(ConditionError::Trailing(t.to_string()));
    }
    Ok(c)
}

/// Whether a search identifier name matches an `x of` pattern (`*` = any run of characters).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = name.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == t[ti] || p[pi] == '?') {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Cond {
        Cond::Ident(s.into())
    }

    #[test]
    fn precedence() {
        assert_eq!(
            parse("a or b and not c").unwrap(),
            Cond::Or(vec![
                id("a"),
                Cond::And(vec![id("b"), Cond::Not(Box::new(id("c")))])
            ])
        );
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Cond::And(vec![Cond::Or(vec![id("a"), id("b")]), id("c")])
        );
        assert_eq!(
            parse("selection and not 1 of filter_*").unwrap(),
            Cond::And(vec![
                id("selection"),
                Cond::Not(Box::new(Cond::Of(
                    Quantifier::Any,
                    OfTarget::Pattern("filter_*".into())
                )))
            ])
        );
        assert_eq!(
            parse("all of them").unwrap(),
            Cond::Of(Quantifier::All, OfTarget::Them)
        );
        assert_eq!(
            parse("NOT a AND 2 of sel*").unwrap(),
            Cond::And(vec![
                Cond::Not(Box::new(id("a"))),
                Cond::Of(Quantifier::AtLeast(2), OfTarget::Pattern("sel*".into()))
            ])
        );
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "a and",
            "(a",
            "a b",
            "selection | count() by x > 5",
            "a near b",
            "and a",
            "x of y",
            "a)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Each refusal says what failed, in the words the rule reports have always used, and
    /// unsupported v1 features are told apart from malformed conditions.
    #[test]
    fn errors_say_what_failed() {
        let cases: &[(&str, ConditionError, &str)] = &[
            (
                "selection | count() by x > 5",
                ConditionError::V1Aggregation,
                "v1 aggregation (`| count() …`) is not supported; use a Sigma v2 correlation rule",
            ),
            (
                "a near b",
                ConditionError::Near,
                "`near` (v1 temporal proximity) is not supported; use a temporal correlation rule",
            ),
            (
                "(sel1 NEAR sel2)",
                ConditionError::Near,
                "`near` (v1 temporal proximity) is not supported; use a temporal correlation rule",
            ),
            (
                "a & b",
                ConditionError::Character('&'),
                "unexpected character `&` in condition",
            ),
            (
                "(a b",
                ConditionError::ExpectedClose("`b`".into()),
                "expected `)`, found `b`",
            ),
            ("(a", ConditionError::MissingClose, "missing `)`"),
            (
                "and a",
                ConditionError::NoLeftOperand("and".into()),
                "`and` without a left operand",
            ),
            (
                "0 of x*",
                ConditionError::ZeroOf,
                "`0 of` is not meaningful",
            ),
            (
                "x of y",
                ConditionError::BadQuantifier("x".into()),
                "`x of`: expected 1, all or a number",
            ),
            (
                "1 of (",
                ConditionError::ExpectedName(Some("`(`".into())),
                "expected a name after `of`, found `(`",
            ),
            (
                "1 of",
                ConditionError::ExpectedName(None),
                "expected a name after `of`",
            ),
            (
                "them",
                ConditionError::Unexpected("`them`".into()),
                "unexpected `them`",
            ),
            (
                ")",
                ConditionError::Unexpected("`)`".into()),
                "unexpected `)`",
            ),
            (
                "a and",
                ConditionError::EndsEarly,
                "condition ends too early",
            ),
            (
                "a)",
                ConditionError::Trailing("`)`".into()),
                "unexpected `)` after the end of the condition",
            ),
        ];
        for (text, error, message) in cases {
            let got = parse(text).unwrap_err();
            assert_eq!(&got, error, "{text:?}");
            assert_eq!(got.to_string(), *message, "{text:?}");
            assert_eq!(
                got.is_unsupported(),
                matches!(error, ConditionError::V1Aggregation | ConditionError::Near),
                "{text:?}"
            );
        }
    }

    #[test]
    fn patterns() {
        assert!(name_matches("sel*", "selection"));
        assert!(name_matches("*_main_*", "filter_main_x"));
        assert!(!name_matches("filter*", "selection"));
        assert!(name_matches("a", "a"));
    }
}
