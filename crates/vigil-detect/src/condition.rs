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

fn lex(text: &str) -> Result<Vec<Tok>, String> {
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
            return Err(format!("unexpected character `{c}` in condition"));
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

    fn or(&mut self) -> Result<Cond, String> {
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

    fn and(&mut self) -> Result<Cond, String> {
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

    fn not(&mut self) -> Result<Cond, String> {
        if is_kw(self.peek(), "not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    Some(t) => Err(format!("expected `)`, found {t}")),
                    None => Err("missing `)`".into()),
                }
            }
            Some(Tok::Word(w)) => {
                let lower = w.to_ascii_lowercase();
                if matches!(lower.as_str(), "and" | "or") {
                    return Err(format!("`{w}` without a left operand"));
                }
                if lower == "near" {
                    return Err("`near` (v1 temporal proximity) is not supported; use a temporal correlation rule".into());
                }
                if is_kw(self.peek(), "of") {
                    let quant = match lower.as_str() {
                        "1" | "any" => Quantifier::Any,
                        "all" => Quantifier::All,
                        n => match n.parse::<usize>() {
                            Ok(0) => return Err("`0 of` is not meaningful".into()),
                            Ok(n) => Quantifier::AtLeast(n),
                            Err(_) => return Err(format!("`{w} of`: expected 1, all or a number")),
                        },
                    };
                    self.pos += 1;
                    let target = match self.next() {
                        Some(Tok::Word(t)) if t.eq_ignore_ascii_case("them") => OfTarget::Them,
                        Some(Tok::Word(t)) => OfTarget::Pattern(t),
                        Some(t) => return Err(format!("expected a name after `of`, found {t}")),
                        None => return Err("expected a name after `of`".into()),
                    };
                    return Ok(Cond::Of(quant, target));
                }
                if lower == "not" || lower == "of" || lower == "them" {
                    return Err(format!("unexpected `{w}`"));
                }
                Ok(Cond::Ident(w))
            }
            Some(Tok::Pipe) => Err("unexpected `|`".into()),
            Some(t) => Err(format!("unexpected {t}")),
            None => Err("condition ends too early".into()),
        }
    }
}

/// Parses one condition string.
pub fn parse(text: &str) -> Result<Cond, String> {
    if text.contains('|') {
        return Err(
            "v1 aggregation (`| count() …`) is not supported; use a Sigma v2 correlation rule"
                .into(),
        );
    }
    let toks = lex(text)?;
    let mut p = Parser { toks, pos: 0 };
    let c = p.or()?;
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {t} after the end of the condition"));
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

    #[test]
    fn patterns() {
        assert!(name_matches("sel*", "selection"));
        assert!(name_matches("*_main_*", "filter_main_x"));
        assert!(!name_matches("filter*", "selection"));
        assert!(name_matches("a", "a"));
    }
}
