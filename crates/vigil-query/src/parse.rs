//! Text → [`Pipeline`]. Hand-written lexers and recursive-descent parsers; every error names
//! the 1-based column where it was found.
//!
//! Queries come from the network (any viewer may search), so the parser bounds what it accepts
//! before anything walks the tree: at most [`MAX_QUERY_LEN`] bytes, [`MAX_TERMS`] terms and
//! [`MAX_DEPTH`] levels of nesting. A query over a limit is a [`ParseError`] that names the limit.
//! Flat chains (`a OR b OR c …`, implicit `AND`, `x + y + z …`) are parsed and evaluated by
//! iteration, so the limits are about sanity, not about the stack: only nesting recurses, and
//! [`MAX_DEPTH`] levels of it fit with room to spare in a 2 MiB thread stack (tokio's worker
//! size) even in a debug build (tested below).

use std::net::IpAddr;

use crate::ast::*;

/// A query that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The longest query accepted, in bytes (16 KiB: a page of hand-written query, or an `IN` list
/// of about a thousand addresses).
pub const MAX_QUERY_LEN: usize = 16 * 1024;

/// The deepest nesting accepted: parentheses, `NOT`, unary minus and function calls each open
/// a level. Hand-written queries nest a handful of levels; each level costs the parser and the
/// evaluators a few stack frames.
pub const MAX_DEPTH: usize = 64;

/// The most terms one query may hold, over all its parts: search terms and comparisons, each
/// value of an `IN (…)` list, and each operand of a `where`/`eval` expression.
pub const MAX_TERMS: usize = 1024;

fn depth_error<T>(offset: usize, text: &str) -> Result<T, ParseError> {
    err(
        offset,
        text,
        format!(
            "query nests too deep: more than {MAX_DEPTH} levels of parentheses, NOT, unary minus or function calls (the nesting depth limit is {MAX_DEPTH})"
        ),
    )
}

fn terms_error<T>(offset: usize, text: &str) -> Result<T, ParseError> {
    err(
        offset,
        text,
        format!(
            "query has too many terms: the limit is {MAX_TERMS} terms per query (search terms, IN values and where/eval operands)"
        ),
    )
}

fn err<T>(offset: usize, text: &str, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column: text[..offset.min(text.len())].chars().count() + 1,
        message: message.into(),
    })
}

/// Parses a whole query, within [`MAX_QUERY_LEN`], [`MAX_TERMS`] and [`MAX_DEPTH`].
pub fn parse(query: &str) -> Result<Pipeline, ParseError> {
    if query.len() > MAX_QUERY_LEN {
        let mut at = MAX_QUERY_LEN;
        while !query.is_char_boundary(at) {
            at -= 1;
        }
        return err(
            at,
            query,
            format!(
                "query is {} bytes long; the query length limit is {MAX_QUERY_LEN} bytes",
                query.len()
            ),
        );
    }
    let segments = split_pipes(query)?;
    let mut terms = 0;
    let mut pipeline = Pipeline {
        search: None,
        earliest: None,
        latest: None,
        commands: Vec::new(),
    };
    for (i, (start, end)) in segments.iter().copied().enumerate() {
        let seg = &query[start..end];
        if i == 0 {
            let trimmed = seg.trim_start();
            let lead = seg.len() - trimmed.len();
            let body = trimmed.strip_prefix("search ").map_or(trimmed, |b| b);
            let body_start = start + lead + (trimmed.len() - body.len());
            let tokens = lex_search(query, body_start, start + seg.len())?;
            let mut p = SearchParser::new(query, tokens, end, terms);
            pipeline.search = p.parse_all()?;
            pipeline.earliest = p.earliest;
            pipeline.latest = p.latest;
            terms = p.terms;
            continue;
        }
        pipeline
            .commands
            .push(parse_command(query, start, end, &mut terms)?);
    }
    Ok(pipeline)
}

/// Byte ranges of the `|`-separated parts (a `|` inside quotes does not split).
fn split_pipes(q: &str) -> Result<Vec<(usize, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in q.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '|' if !in_quote => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quote {
        return err(q.rfind('"').unwrap_or(0), q, "unterminated quote");
    }
    out.push((start, q.len()));
    for (i, (s, e)) in out.iter().enumerate() {
        if i > 0 && q[*s..*e].trim().is_empty() {
            return err(*s, q, "empty command after |");
        }
    }
    Ok(out)
}

// ---- search part ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
}

fn lex_search(q: &str, start: usize, end: usize) -> Result<Vec<(usize, Tok)>, ParseError> {
    let mut out = Vec::new();
    let bytes = q.as_bytes();
    let mut i = start;
    while i < end {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let at = i;
        match c {
            b'(' => {
                out.push((at, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((at, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((at, Tok::Comma));
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                let mut closed = false;
                while i < end {
                    let ch = q[i..].chars().next().expect("in bounds");
                    if ch == '\\' && i + 1 < end {
                        let next = q[i + 1..].chars().next().expect("in bounds");
                        s.push(next);
                        i += 1 + next.len_utf8();
                        continue;
                    }
                    if ch == '"' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    s.push(ch);
                    i += ch.len_utf8();
                }
                if !closed {
                    return err(at, q, "unterminated quote");
                }
                out.push((at, Tok::Quoted(s)));
            }
            b'=' | b'<' | b'>' | b'!' => {
                let two = q.get(i..i + 2).unwrap_or("");
                let (op, len) = match two {
                    "!=" => (CmpOp::Ne, 2),
                    "<=" => (CmpOp::Le, 2),
                    ">=" => (CmpOp::Ge, 2),
                    "==" => (CmpOp::Eq, 2),
                    _ => match c {
                        b'=' => (CmpOp::Eq, 1),
                        b'<' => (CmpOp::Lt, 1),
                        b'>' => (CmpOp::Gt, 1),
                        _ => return err(at, q, "`!` must be followed by `=`"),
                    },
                };
                out.push((at, Tok::Op(op)));
                i += len;
            }
            _ => {
                let mut j = i;
                while j < end {
                    let b = bytes[j];
                    if b.is_ascii_whitespace()
                        || matches!(b, b'(' | b')' | b',' | b'"' | b'=' | b'<' | b'>' | b'!')
                    {
                        break;
                    }
                    j += 1;
                }
                out.push((at, Tok::Word(q[i..j].to_owned())));
                i = j;
            }
        }
    }
    Ok(out)
}

struct SearchParser<'a> {
    q: &'a str,
    tokens: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    earliest: Option<TimeSpec>,
    latest: Option<TimeSpec>,
    /// Nesting levels open at `pos`.
    depth: usize,
    /// Terms of the whole query so far.
    terms: usize,
}

/// Adds `item` to an n-ary node's items, taking in the items of a nested node of the same kind
/// (`(a AND b) c` is one `And` of three).
fn push_flat(items: &mut Vec<Expr>, item: Expr, is_and: bool) {
    match item {
        Expr::And(inner) if is_and => items.extend(inner),
        Expr::Or(inner) if !is_and => items.extend(inner),
        other => items.push(other),
    }
}

/// One expression from an n-ary node's items.
fn join(mut items: Vec<Expr>, is_and: bool) -> Option<Expr> {
    match items.len() {
        0 => None,
        1 => items.pop(),
        _ if is_and => Some(Expr::And(items)),
        _ => Some(Expr::Or(items)),
    }
}

impl<'a> SearchParser<'a> {
    fn new(q: &'a str, tokens: Vec<(usize, Tok)>, end: usize, terms: usize) -> SearchParser<'a> {
        SearchParser {
            q,
            tokens,
            pos: 0,
            end,
            earliest: None,
            latest: None,
            depth: 0,
            terms,
        }
    }

    /// Opens a nesting level at `at`, refusing to go past [`MAX_DEPTH`].
    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return depth_error(at, self.q);
        }
        self.depth += 1;
        Ok(())
    }

    /// Counts `n` terms found at `at`, refusing to go past [`MAX_TERMS`].
    fn count_terms(&mut self, at: usize, n: usize) -> Result<(), ParseError> {
        self.terms += n;
        if self.terms > MAX_TERMS {
            return terms_error(at, self.q);
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw) && w.chars().all(|c| c.is_ascii_uppercase()))
    }

    fn parse_all(&mut self) -> Result<Option<Expr>, ParseError> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let expr = self.parse_or()?;
        if self.pos < self.tokens.len() {
            return err(self.offset(), self.q, "unexpected token");
        }
        Ok(expr)
    }

    fn parse_or(&mut self) -> Result<Option<Expr>, ParseError> {
        let first_at = self.offset();
        let first = self.parse_and()?;
        if !self.is_keyword("OR") {
            return Ok(first);
        }
        let Some(first) = first else {
            return err(
                first_at,
                self.q,
                "OR needs a search expression on both sides",
            );
        };
        let mut items = Vec::new();
        push_flat(&mut items, first, false);
        while self.is_keyword("OR") {
            self.pos += 1;
            let at = self.offset();
            match self.parse_and()? {
                Some(r) => push_flat(&mut items, r, false),
                None => return err(at, self.q, "OR needs a search expression on both sides"),
            }
        }
        Ok(join(items, false))
    }

    fn parse_and(&mut self) -> Result<Option<Expr>, ParseError> {
        let mut items = Vec::new();
        if let Some(first) = self.parse_unary()? {
            push_flat(&mut items, first, true);
        }
        loop {
            if self.is_keyword("AND") {
                self.pos += 1;
            } else if self.pos >= self.tokens.len()
                || self.is_keyword("OR")
                || self.peek() == Some(&Tok::RParen)
            {
                break;
            }
            if let Some(r) = self.parse_unary()? {
                push_flat(&mut items, r, true);
            }
        }
        Ok(join(items, true))
    }

    fn parse_unary(&mut self) -> Result<Option<Expr>, ParseError> {
        if self.is_keyword("NOT") {
            let at = self.offset();
            self.enter(at)?;
            self.pos += 1;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return match inner {
                Some(e) => Ok(Some(Expr::Not(Box::new(e)))),
                None => err(at, self.q, "NOT needs a search expression"),
            };
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Option<Expr>, ParseError> {
        let at = self.offset();
        let Some((_, tok)) = self.tokens.get(self.pos).cloned() else {
            return err(at, self.q, "expected a search term");
        };
        match tok {
            Tok::LParen => {
                self.enter(at)?;
                self.pos += 1;
                let inner = self.parse_or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return err(self.offset(), self.q, "expected `)`");
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Quoted(s) => {
                self.count_terms(at, 1)?;
                self.pos += 1;
                Ok(Some(Expr::Text(pattern(&s))))
            }
            Tok::Word(w) => {
                self.count_terms(at, 1)?;
                self.pos += 1;
                match self.peek() {
                    Some(Tok::Op(op)) => {
                        let op = *op;
                        self.pos += 1;
                        let value_at = self.offset();
                        let value = match self.tokens.get(self.pos) {
                            Some((_, Tok::Word(v))) | Some((_, Tok::Quoted(v))) => v.clone(),
                            _ => {
                                return err(
                                    value_at,
                                    self.q,
                                    format!("expected a value after `{w}`"),
                                );
                            }
                        };
                        let quoted = matches!(self.peek(), Some(Tok::Quoted(_)));
                        self.pos += 1;
                        let lower = w.to_ascii_lowercase();
                        if lower == "earliest" || lower == "latest" {
                            if op != CmpOp::Eq {
                                return err(at, self.q, format!("{lower} takes `=`"));
                            }
                            let t = parse_time(&value).ok_or(()).or_else(|_| err(value_at, self.q, format!("cannot read {value:?} as a time (use -15m, -24h, -7d, now, or RFC 3339)")))?;
                            if lower == "earliest" {
                                self.earliest = Some(t);
                            } else {
                                self.latest = Some(t);
                            }
                            return Ok(None);
                        }
                        Ok(Some(Expr::Compare {
                            field: w,
                            op,
                            value: literal(&value, quoted),
                        }))
                    }
                    Some(Tok::Word(kw))
                        if kw == "IN"
                            && matches!(self.tokens.get(self.pos + 1), Some((_, Tok::LParen))) =>
                    {
                        self.pos += 2;
                        let mut values = Vec::new();
                        loop {
                            let vat = self.offset();
                            if !values.is_empty() {
                                self.count_terms(vat, 1)?;
                            }
                            match self.tokens.get(self.pos).cloned() {
                                Some((_, Tok::Word(v))) => values.push(literal(&v, false)),
                                Some((_, Tok::Quoted(v))) => values.push(literal(&v, true)),
                                _ => return err(vat, self.q, "expected a value in IN (…)"),
                            }
                            self.pos += 1;
                            match self.peek() {
                                Some(Tok::Comma) => self.pos += 1,
                                Some(Tok::RParen) => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => {
                                    return err(
                                        self.offset(),
                                        self.q,
                                        "expected `,` or `)` in IN (…)",
                                    );
                                }
                            }
                        }
                        Ok(Some(Expr::In { field: w, values }))
                    }
                    _ => Ok(Some(Expr::Text(pattern(&w)))),
                }
            }
            Tok::RParen => err(at, self.q, "unbalanced `)`"),
            Tok::Comma => err(at, self.q, "unexpected `,`"),
            Tok::Op(_) => err(at, self.q, "a comparison needs a field name before it"),
        }
    }
}

fn pattern(text: &str) -> Pattern {
    Pattern {
        text: text.to_owned(),
        wildcard: text.contains('*'),
    }
}

fn literal(text: &str, quoted: bool) -> Literal {
    if !quoted {
        if let Some((addr, bits)) = text.split_once('/')
            && let (Ok(ip), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u8>())
            && bits <= if ip.is_ipv4() { 32 } else { 128 }
        {
            return Literal::Cidr(ip, bits);
        }
        if let Ok(n) = text.parse::<f64>()
            && n.is_finite()
        {
            return Literal::Number(n);
        }
    }
    Literal::Text(pattern(text))
}

/// A `--from`/`--to` or API time (`-15m`, `now`, RFC 3339) as an instant, relative to `now`;
/// `None` stays `None` (no bound).
pub fn resolve_time(
    text: Option<&str>,
    now: vigil_event::Timestamp,
) -> Result<Option<vigil_event::Timestamp>, String> {
    use vigil_event::Timestamp;
    let Some(t) = text else { return Ok(None) };
    match parse_time(t) {
        Some(TimeSpec::Relative(s)) => Ok(Some(Timestamp::from_nanos(
            now.as_nanos()
                .saturating_add(s.saturating_mul(1_000_000_000)),
        ))),
        Some(TimeSpec::Absolute(n)) => Ok(Some(Timestamp::from_nanos(n))),
        None => Err(format!(
            "cannot read time {t:?}: use -15m, -24h, -7d, now, or RFC 3339"
        )),
    }
}

/// `-15m`, `-24h`, `-7d`, `-2w`, `now`, `0`, or an RFC 3339 time.
pub fn parse_time(text: &str) -> Option<TimeSpec> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Some(TimeSpec::Relative(0));
    }
    if let Some(rest) = t.strip_prefix('-').or(t.strip_prefix('+')) {
        let sign = if t.starts_with('-') { -1 } else { 1 };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let unit = &rest[digits.len()..];
        let n: i64 = if digits.is_empty() {
            1
        } else {
            digits.parse().ok()?
        };
        let secs = match unit {
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hrs" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "mon" | "month" | "months" => 30 * 86_400,
            "y" | "year" | "years" => 365 * 86_400,
            _ => return None,
        };
        return Some(TimeSpec::Relative(sign * n * secs));
    }
    vigil_event::Timestamp::parse(t)
        .ok()
        .map(|ts| TimeSpec::Absolute(ts.as_nanos()))
}

/// Parses a span like `5m`, `1h`, `30s`, `1d` into seconds.
pub fn parse_span(text: &str) -> Option<i64> {
    match parse_time(&format!("-{text}"))? {
        TimeSpec::Relative(s) if s < 0 => Some(-s),
        _ => None,
    }
}

// ---- commands -----------------------------------------------------------------------------------

fn words_of(q: &str, start: usize, end: usize) -> Result<Vec<(usize, Tok)>, ParseError> {
    lex_search(q, start, end)
}

fn parse_command(
    q: &str,
    start: usize,
    end: usize,
    terms: &mut usize,
) -> Result<Command, ParseError> {
    let seg = &q[start..end];
    let trimmed = seg.trim_start();
    let name_at = start + (seg.len() - trimmed.len());
    let name: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let rest_start = name_at + name.len();
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "search" => {
            let tokens = lex_search(q, rest_start, end)?;
            let mut p = SearchParser::new(q, tokens, end, *terms);
            let parsed = p.parse_all()?;
            *terms = p.terms;
            match parsed {
                Some(e) => Ok(Command::Search(e)),
                None => err(rest_start, q, "search needs an expression"),
            }
        }
        "where" => {
            let mut p = CalcParser::new(q, rest_start, end, *terms)?;
            let e = p.parse_expr()?;
            p.expect_end()?;
            *terms = p.terms;
            Ok(Command::Where(e))
        }
        "eval" => {
            let mut p = CalcParser::new(q, rest_start, end, *terms)?;
            let mut out = Vec::new();
            loop {
                let at = p.offset();
                let Some(CTok::Ident(field)) = p.next() else {
                    return err(at, q, "eval needs `FIELD = EXPRESSION`");
                };
                if p.next() != Some(CTok::Op("=")) {
                    return err(p.offset(), q, "expected `=` after the eval field");
                }
                out.push((field, p.parse_expr()?));
                if p.peek() == Some(&CTok::Comma) {
                    p.next();
                    continue;
                }
                p.expect_end()?;
                break;
            }
            *terms = p.terms;
            Ok(Command::Eval(out))
        }
        "stats" => {
            let tokens = words_of(q, rest_start, end)?;
            let (aggs, by, _) = parse_aggs(q, &tokens, end)?;
            if aggs.is_empty() {
                return err(
                    rest_start,
                    q,
                    "stats needs at least one function, e.g. stats count by source.ip",
                );
            }
            Ok(Command::Stats { aggs, by })
        }
        "timechart" => {
            let mut tokens = words_of(q, rest_start, end)?;
            let mut span = 60 * 60;
            if let [
                (_, Tok::Word(w)),
                (_, Tok::Op(CmpOp::Eq)),
                (at, Tok::Word(v)),
                ..,
            ] = tokens.as_slice()
                && w == "span"
            {
                span = parse_span(v).ok_or(()).or_else(|_| {
                    err(
                        *at,
                        q,
                        format!("cannot read span {v:?} (use 30s, 5m, 1h, 1d)"),
                    )
                })?;
                tokens.drain(..3);
            }
            let (mut aggs, by, _) = parse_aggs(q, &tokens, end)?;
            if aggs.is_empty() {
                aggs.push(Agg {
                    func: AggFunc::Count,
                    field: None,
                    name: "count".into(),
                });
            }
            if by.len() > 1 {
                return err(rest_start, q, "timechart splits by at most one field");
            }
            Ok(Command::Timechart {
                span,
                aggs,
                by: by.into_iter().next(),
            })
        }
        "top" | "rare" => {
            let tokens = words_of(q, rest_start, end)?;
            let mut limit = 10;
            let mut fields = Vec::new();
            for (at, t) in tokens {
                match t {
                    Tok::Word(w) if w.starts_with("limit") => {}
                    Tok::Op(CmpOp::Eq) => {}
                    Tok::Word(w) if w.chars().all(|c| c.is_ascii_digit()) => {
                        limit = w.parse().unwrap_or(10);
                    }
                    Tok::Word(w) => fields.push(w),
                    Tok::Comma => {}
                    _ => return err(at, q, format!("unexpected token in {lower}")),
                }
            }
            if fields.is_empty() {
                return err(rest_start, q, format!("{lower} needs a field"));
            }
            Ok(Command::Top {
                limit,
                fields,
                rare: lower == "rare",
            })
        }
        "sort" => {
            let tokens = words_of(q, rest_start, end)?;
            let mut keys = Vec::new();
            let mut limit = None;
            for (at, t) in tokens {
                match t {
                    Tok::Word(w)
                        if keys.is_empty()
                            && limit.is_none()
                            && w.chars().all(|c| c.is_ascii_digit()) =>
                    {
                        limit = w.parse().ok();
                    }
                    Tok::Word(w) => {
                        let (desc, name) = match w.strip_prefix('-') {
                            Some(n) => (true, n),
                            None => (false, w.strip_prefix('+').unwrap_or(&w)),
                        };
                        if name.is_empty() {
                            return err(at, q, "sort needs a field after - or +");
                        }
                        keys.push((name.to_owned(), desc));
                    }
                    Tok::Comma => {}
                    _ => return err(at, q, "unexpected token in sort"),
                }
            }
            if keys.is_empty() {
                return err(rest_start, q, "sort needs a field, e.g. sort -count");
            }
            Ok(Command::Sort { keys, limit })
        }
        "head" | "tail" => {
            let tokens = words_of(q, rest_start, end)?;
            let n = match tokens.as_slice() {
                [] => 10,
                [(at, Tok::Word(w))] => w
                    .parse::<usize>()
                    .ok()
                    .ok_or(())
                    .or_else(|_| err(*at, q, format!("{lower} takes a number")))?,
                [(at, _), ..] => return err(*at, q, format!("{lower} takes one number")),
            };
            Ok(if lower == "head" {
                Command::Head(n)
            } else {
                Command::Tail(n)
            })
        }
        "table" | "fields" | "dedup" => {
            let tokens = words_of(q, rest_start, end)?;
            let mut remove = false;
            let mut fields = Vec::new();
            for (i, (at, t)) in tokens.into_iter().enumerate() {
                match t {
                    Tok::Word(w) if w == "-" && i == 0 && lower == "fields" => remove = true,
                    Tok::Word(w) if w == "+" && i == 0 && lower == "fields" => {}
                    Tok::Word(w) => fields.push(w),
                    Tok::Comma => {}
                    _ => return err(at, q, format!("unexpected token in {lower}")),
                }
            }
            if fields.is_empty() {
                return err(rest_start, q, format!("{lower} needs at least one field"));
            }
            Ok(match lower.as_str() {
                "table" => Command::Table(fields),
                "fields" => Command::Fields { remove, fields },
                _ => Command::Dedup(fields),
            })
        }
        "rename" => {
            let tokens = words_of(q, rest_start, end)?;
            let mut pairs = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                match (&tokens.get(i), &tokens.get(i + 1), &tokens.get(i + 2)) {
                    (
                        Some((_, Tok::Word(a) | Tok::Quoted(a))),
                        Some((_, Tok::Word(as_))),
                        Some((_, Tok::Word(b) | Tok::Quoted(b))),
                    ) if as_.eq_ignore_ascii_case("as") => {
                        pairs.push((a.clone(), b.clone()));
                        i += 3;
                        if matches!(tokens.get(i), Some((_, Tok::Comma))) {
                            i += 1;
                        }
                    }
                    _ => return err(tokens[i].0, q, "rename takes `OLD as NEW`"),
                }
            }
            if pairs.is_empty() {
                return err(rest_start, q, "rename takes `OLD as NEW`");
            }
            Ok(Command::Rename(pairs))
        }
        "" => err(name_at, q, "expected a command name after |"),
        _ => err(
            name_at,
            q,
            format!(
                "unknown command {name:?} (known: search, where, stats, timechart, top, rare, sort, head, tail, table, fields, dedup, eval, rename)"
            ),
        ),
    }
}

/// `count, dc(user) as users, perc95(bytes) by a, b`.
fn parse_aggs(
    q: &str,
    tokens: &[(usize, Tok)],
    end: usize,
) -> Result<(Vec<Agg>, Vec<String>, usize), ParseError> {
    let mut aggs = Vec::new();
    let mut by = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (at, tok) = &tokens[i];
        match tok {
            Tok::Comma => {
                i += 1;
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("by") => {
                i += 1;
                while i < tokens.len() {
                    match &tokens[i] {
                        (_, Tok::Word(f)) => by.push(f.clone()),
                        (_, Tok::Comma) => {}
                        (at, _) => return err(*at, q, "expected field names after by"),
                    }
                    i += 1;
                }
                if by.is_empty() {
                    return err(end, q, "by needs a field");
                }
            }
            Tok::Word(w) => {
                let func = agg_func(w).ok_or(()).or_else(|_| err(*at, q, format!("unknown function {w:?} (count, dc, sum, avg, min, max, values, earliest, latest, perc50…perc99, median)")))?;
                i += 1;
                let mut field = None;
                if matches!(tokens.get(i), Some((_, Tok::LParen))) {
                    match (tokens.get(i + 1), tokens.get(i + 2)) {
                        (Some((_, Tok::Word(f))), Some((_, Tok::RParen))) => {
                            field = Some(f.clone());
                            i += 3;
                        }
                        (Some((_, Tok::RParen)), _) => i += 2,
                        _ => return err(tokens[i].0, q, "expected `(field)`"),
                    }
                }
                if func != AggFunc::Count && field.is_none() {
                    return err(*at, q, format!("{w} needs a field: {w}(field)"));
                }
                let mut name = match &field {
                    Some(f) => format!("{}({f})", w.to_ascii_lowercase()),
                    None => "count".to_owned(),
                };
                if let Some((_, Tok::Word(kw))) = tokens.get(i)
                    && kw.eq_ignore_ascii_case("as")
                {
                    match tokens.get(i + 1) {
                        Some((_, Tok::Word(n) | Tok::Quoted(n))) => {
                            name = n.clone();
                            i += 2;
                        }
                        _ => return err(tokens[i].0, q, "expected a name after as"),
                    }
                }
                aggs.push(Agg { func, field, name });
            }
            _ => return err(*at, q, "expected a function like count or avg(field)"),
        }
    }
    Ok((aggs, by, i))
}

fn agg_func(name: &str) -> Option<AggFunc> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "count" | "c" => AggFunc::Count,
        "dc" | "distinct_count" => AggFunc::DistinctCount,
        "sum" => AggFunc::Sum,
        "avg" | "mean" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "values" => AggFunc::Values,
        "earliest" | "first" => AggFunc::Earliest,
        "latest" | "last" => AggFunc::Latest,
        "median" => AggFunc::Percentile(50.0),
        _ => {
            let p = n.strip_prefix("perc").or(n.strip_prefix('p'))?;
            let v: f64 = p.parse().ok()?;
            if !(0.0..=100.0).contains(&v) {
                return None;
            }
            AggFunc::Percentile(v)
        }
    })
}

// ---- where / eval expressions -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum CTok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

struct CalcParser<'a> {
    q: &'a str,
    tokens: Vec<(usize, CTok)>,
    pos: usize,
    end: usize,
    /// Nesting levels open at `pos`.
    depth: usize,
    /// Terms of the whole query so far.
    terms: usize,
}

impl<'a> CalcParser<'a> {
    fn new(
        q: &'a str,
        start: usize,
        end: usize,
        terms: usize,
    ) -> Result<CalcParser<'a>, ParseError> {
        let bytes = q.as_bytes();
        let mut tokens = Vec::new();
        let mut i = start;
        while i < end {
            let c = bytes[i];
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let at = i;
            if c.is_ascii_digit() {
                let mut j = i;
                while j < end && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
                    j += 1;
                }
                let n: f64 = q[i..j]
                    .parse()
                    .ok()
                    .ok_or(())
                    .or_else(|_| err(at, q, "bad number"))?;
                tokens.push((at, CTok::Num(n)));
                i = j;
            } else if c.is_ascii_alphabetic() || c == b'_' || c == b'@' {
                let mut j = i;
                while j < end
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.' | b'@'))
                {
                    j += 1;
                }
                tokens.push((at, CTok::Ident(q[i..j].to_owned())));
                i = j;
            } else if c == b'"' || c == b'\'' {
                let mut j = i + 1;
                let mut s = String::new();
                let mut closed = false;
                while j < end {
                    let ch = q[j..].chars().next().expect("in bounds");
                    if ch == '\\' && j + 1 < end {
                        let next = q[j + 1..].chars().next().expect("in bounds");
                        s.push(next);
                        j += 1 + next.len_utf8();
                        continue;
                    }
                    if ch as u32 == c as u32 {
                        closed = true;
                        j += 1;
                        break;
                    }
                    s.push(ch);
                    j += ch.len_utf8();
                }
                if !closed {
                    return err(at, q, "unterminated quote");
                }
                // 'single quotes' name a field (Splunk); "double" are strings.
                tokens.push((
                    at,
                    if c == b'"' {
                        CTok::Str(s)
                    } else {
                        CTok::Ident(s)
                    },
                ));
                i = j;
            } else {
                let two = q.get(i..i + 2).unwrap_or("");
                let (tok, len) = match two {
                    "==" => (CTok::Op("=="), 2),
                    "!=" => (CTok::Op("!="), 2),
                    "<=" => (CTok::Op("<="), 2),
                    ">=" => (CTok::Op(">="), 2),
                    _ => match c {
                        b'=' => (CTok::Op("="), 1),
                        b'<' => (CTok::Op("<"), 1),
                        b'>' => (CTok::Op(">"), 1),
                        b'+' => (CTok::Op("+"), 1),
                        b'-' => (CTok::Op("-"), 1),
                        b'*' => (CTok::Op("*"), 1),
                        b'/' => (CTok::Op("/"), 1),
                        b'%' => (CTok::Op("%"), 1),
                        b'.' => (CTok::Op("."), 1),
                        b'(' => (CTok::LParen, 1),
                        b')' => (CTok::RParen, 1),
                        b',' => (CTok::Comma, 1),
                        _ => {
                            return err(
                                at,
                                q,
                                format!(
                                    "unexpected character {:?}",
                                    q[i..].chars().next().unwrap_or(' ')
                                ),
                            );
                        }
                    },
                };
                tokens.push((at, tok));
                i += len;
            }
        }
        Ok(CalcParser {
            q,
            tokens,
            pos: 0,
            end,
            depth: 0,
            terms,
        })
    }

    /// Opens a nesting level at `at`, refusing to go past [`MAX_DEPTH`].
    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return depth_error(at, self.q);
        }
        self.depth += 1;
        Ok(())
    }

    fn peek(&self) -> Option<&CTok> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<CTok> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(CTok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        if self.pos < self.tokens.len() {
            return err(self.offset(), self.q, "unexpected token");
        }
        Ok(())
    }

    fn parse_expr(&mut self) -> Result<Calc, ParseError> {
        let mut left = self.parse_and()?;
        while self.keyword("OR") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Calc::Binary(Box::new(left), BinOp::Or, Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Calc, ParseError> {
        let mut left = self.parse_not()?;
        while self.keyword("AND") {
            self.pos += 1;
            let right = self.parse_not()?;
            left = Calc::Binary(Box::new(left), BinOp::And, Box::new(right));
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Calc, ParseError> {
        if self.keyword("NOT") {
            self.enter(self.offset())?;
            self.pos += 1;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(Calc::Unary(UnaryOp::Not, Box::new(inner)));
        }
        self.parse_cmp()
    }

    fn parse_cmp(&mut self) -> Result<Calc, ParseError> {
        let left = self.parse_add()?;
        let op = match self.peek() {
            Some(CTok::Op("=" | "==")) => CmpOp::Eq,
            Some(CTok::Op("!=")) => CmpOp::Ne,
            Some(CTok::Op("<")) => CmpOp::Lt,
            Some(CTok::Op("<=")) => CmpOp::Le,
            Some(CTok::Op(">")) => CmpOp::Gt,
            Some(CTok::Op(">=")) => CmpOp::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.parse_add()?;
        Ok(Calc::Binary(
            Box::new(left),
            BinOp::Cmp(op),
            Box::new(right),
        ))
    }

    fn parse_add(&mut self) -> Result<Calc, ParseError> {
        let mut left = self.parse_mul()?;
        loop {
            let op = match self.peek() {
                Some(CTok::Op("+")) => BinOp::Add,
                Some(CTok::Op("-")) => BinOp::Sub,
                Some(CTok::Op(".")) => BinOp::Concat,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.parse_mul()?;
            left = Calc::Binary(Box::new(left), op, Box::new(right));
        }
    }

    fn parse_mul(&mut self) -> Result<Calc, ParseError> {
        let mut left = self.parse_unary()?;
        loop {
            let op = match self.peek() {
                Some(CTok::Op("*")) => BinOp::Mul,
                Some(CTok::Op("/")) => BinOp::Div,
                Some(CTok::Op("%")) => BinOp::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Calc::Binary(Box::new(left), op, Box::new(right));
        }
    }

    fn parse_unary(&mut self) -> Result<Calc, ParseError> {
        if self.peek() == Some(&CTok::Op("-")) {
            self.enter(self.offset())?;
            self.pos += 1;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Calc::Unary(UnaryOp::Neg, Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Calc, ParseError> {
        let at = self.offset();
        if matches!(self.peek(), Some(CTok::LParen)) {
            return self.nested(at, |p| {
                p.pos += 1;
                let e = p.parse_expr()?;
                if p.next() != Some(CTok::RParen) {
                    return err(p.offset(), p.q, "expected `)`");
                }
                Ok(e)
            });
        }
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return terms_error(at, self.q);
        }
        match self.next() {
            Some(CTok::Num(n)) => Ok(Calc::Num(n)),
            Some(CTok::Str(s)) => Ok(Calc::Str(s)),
            Some(CTok::Ident(name)) => {
                if self.peek() == Some(&CTok::LParen) {
                    let args = self.nested(at, |p| {
                        p.pos += 1;
                        let mut args = Vec::new();
                        if p.peek() != Some(&CTok::RParen) {
                            loop {
                                args.push(p.parse_expr()?);
                                match p.next() {
                                    Some(CTok::Comma) => {}
                                    Some(CTok::RParen) => break,
                                    _ => return err(p.offset(), p.q, "expected `,` or `)`"),
                                }
                            }
                        } else {
                            p.pos += 1;
                        }
                        Ok(args)
                    })?;
                    return Ok(Calc::Call(name.to_ascii_lowercase(), args));
                }
                match name.as_str() {
                    "true" | "TRUE" => Ok(Calc::Bool(true)),
                    "false" | "FALSE" => Ok(Calc::Bool(false)),
                    _ => Ok(Calc::Field(name)),
                }
            }
            _ => err(at, self.q, "expected a value, field or function"),
        }
    }

    /// Runs `f` one nesting level deeper (opened at `at`).
    fn nested<T>(
        &mut self,
        at: usize,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.enter(at)?;
        let out = f(self)?;
        self.depth -= 1;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_parses() {
        let p = parse("sourcetype=access_combined | search status=403 | stats count by src_ip | where count > 5").unwrap();
        assert!(
            matches!(p.search, Some(Expr::Compare { ref field, op: CmpOp::Eq, .. }) if field == "sourcetype")
        );
        assert_eq!(p.commands.len(), 3);
        assert!(matches!(&p.commands[1], Command::Stats { by, .. } if by == &["src_ip"]));
        assert!(matches!(
            &p.commands[2],
            Command::Where(Calc::Binary(_, BinOp::Cmp(CmpOp::Gt), _))
        ));
    }

    #[test]
    fn search_part() {
        let p = parse(r#"event.category=authentication event.outcome=failure earliest=-1h "Failed password" NOT user.name=root source.ip=10.0.0.0/8 status IN (401, 403) url=/admin*"#).unwrap();
        assert_eq!(p.earliest, Some(TimeSpec::Relative(-3600)));
        let s = format!("{:?}", p.search.unwrap());
        assert!(s.contains("Cidr(10.0.0.0, 8)"), "{s}");
        assert!(s.contains("Not("), "{s}");
        assert!(s.contains("wildcard: true"), "{s}");
        let p = parse("a=1 OR (b=2 AND c=3)").unwrap();
        assert!(matches!(p.search, Some(Expr::Or(..))));
        assert!(parse("").unwrap().search.is_none());
    }

    #[test]
    fn commands() {
        let p = parse("* | stats count, dc(user.name) as users, perc95(http.response.body.bytes), avg(x) by source.ip, host.name | sort 5 -count, +users | head 3 | table source.ip count | rename count as n | fields - users | dedup source.ip | eval ratio = n / 2, label = \"ip \" . source.ip | top 3 source.ip | rare user | timechart span=5m count by host.name | tail").unwrap();
        assert_eq!(p.commands.len(), 12);
        let Command::Stats { aggs, by } = &p.commands[0] else {
            panic!()
        };
        assert_eq!(
            aggs.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            [
                "count",
                "users",
                "perc95(http.response.body.bytes)",
                "avg(x)"
            ]
        );
        assert_eq!(by, &["source.ip", "host.name"]);
        assert!(
            matches!(&p.commands[1], Command::Sort { limit: Some(5), keys } if keys == &[("count".to_string(), true), ("users".to_string(), false)])
        );
        assert!(
            matches!(&p.commands[10], Command::Timechart { span: 300, by: Some(b), .. } if b == "host.name")
        );
        assert_eq!(p.commands[11], Command::Tail(10));
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse("status=404 | statz count").unwrap_err();
        assert_eq!(e.column, 14);
        assert!(e.message.contains("unknown command \"statz\""));
        let e = parse("a=1 | where count >").unwrap_err();
        assert_eq!(e.column, 20);
        let e = parse("user=\"bob").unwrap_err();
        assert_eq!(e.column, 6);
        let e = parse("a=1 | stats avg").unwrap_err();
        assert!(e.message.contains("avg needs a field"), "{e}");
        let e = parse("a=1 |  | head").unwrap_err();
        assert_eq!(e.column, 6);
        let e = parse("earliest=yesterday").unwrap_err();
        assert_eq!(e.column, 10);
        assert!(parse("(a=1").is_err());
        assert!(parse("a=1)").is_err());
    }

    /// Runs `f` on a thread with a 2 MiB stack, tokio's worker size: a query that overflows it
    /// would kill a server.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("no stack overflow or panic")
    }

    /// Parses `query`, runs it over a few events and drops the tree, all on a 2 MiB stack.
    /// Returns the parse error, if any, and the rows the run returned.
    fn parse_and_run(query: String) -> Result<usize, ParseError> {
        on_small_stack(move || {
            let pipeline = parse(&query)?;
            let mut events = Vec::new();
            for i in 0..3i64 {
                let mut e = vigil_event::Event::new(vigil_event::Timestamp::from_secs(i));
                e.insert("message", format!("t{i} hello"));
                e.insert("x", i);
                events.push((i as u64, e));
            }
            let result = crate::exec::run(
                &pipeline,
                events,
                crate::exec::Limits {
                    from: None,
                    to: None,
                    max_rows: 100,
                    now: vigil_event::Timestamp::from_secs(10),
                },
            );
            let rows = result.rows.len();
            drop(pipeline);
            Ok(rows)
        })
    }

    fn or_chain(n: usize) -> String {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    }
    fn and_chain(n: usize) -> String {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn not_chain(n: usize) -> String {
        format!("{}t1", "NOT ".repeat(n))
    }
    fn parens(n: usize) -> String {
        format!("{}t1{}", "(".repeat(n), ")".repeat(n))
    }

    fn assert_limit(r: Result<usize, ParseError>, limit: &str, shape: &str) {
        let e = r.expect_err(shape);
        assert!(e.message.contains(limit), "{shape}: {e}");
    }

    #[test]
    fn long_flat_search_chains_are_one_node_and_run_at_the_term_limit() {
        let Some(Expr::Or(items)) = parse(&or_chain(5)).unwrap().search else {
            panic!("one Or")
        };
        assert_eq!(items.len(), 5);
        let Some(Expr::And(items)) = parse("a (b c) d").unwrap().search else {
            panic!("one And")
        };
        assert_eq!(items.len(), 4, "nested ANDs flatten");
        // The shapes that crashed the server (~470 terms), and the limit itself.
        for n in [470, MAX_TERMS] {
            assert_eq!(parse_and_run(or_chain(n)).unwrap(), 3, "{n} ORs");
            assert_eq!(parse_and_run(and_chain(n)).unwrap(), 0, "{n} ANDs");
            let nots = (0..n).map(|i| format!("NOT t{i}")).collect::<Vec<_>>();
            assert_eq!(parse_and_run(nots.join(" ")).unwrap(), 0, "{n} flat NOTs");
        }
        let values = (0..MAX_TERMS).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_and_run(format!("x IN ({})", values.join(","))).unwrap(),
            3
        );
    }

    #[test]
    fn more_terms_than_the_limit_is_an_error_naming_it() {
        let limit = "limit is 1024 terms";
        assert_limit(parse_and_run(or_chain(MAX_TERMS + 1)), limit, "ORs");
        assert_limit(parse_and_run(and_chain(MAX_TERMS + 1)), limit, "ANDs");
        let values = (0..=MAX_TERMS).map(|i| i.to_string()).collect::<Vec<_>>();
        let q = format!("x IN ({})", values.join(","));
        assert_limit(parse_and_run(q), limit, "IN values");
        // Terms count over the whole query, search part and commands together.
        let q = format!("{} | where {}", and_chain(600), vec!["1"; 600].join(" + "));
        assert_limit(parse_and_run(q), limit, "search + where");
    }

    #[test]
    fn nesting_runs_at_the_depth_limit_and_fails_past_it() {
        assert_eq!(parse_and_run(parens(MAX_DEPTH)).unwrap(), 1);
        assert_eq!(parse_and_run(not_chain(MAX_DEPTH)).unwrap(), 1);
        let mixed = format!(
            "{}t1{}",
            "NOT (".repeat(MAX_DEPTH / 2),
            ")".repeat(MAX_DEPTH / 2)
        );
        assert_eq!(parse_and_run(mixed).unwrap(), 1);
        let limit = "nesting depth limit is 64";
        // 2,000 parentheses and ~470 NOTs crashed the server.
        for n in [MAX_DEPTH + 1, 470, 2_000] {
            assert_limit(parse_and_run(parens(n)), limit, "parentheses");
            assert_limit(parse_and_run(not_chain(n)), limit, "NOTs");
        }
        let e = parse(&parens(2_000)).unwrap_err();
        assert_eq!(
            e.column,
            MAX_DEPTH + 1,
            "points at the first level too many"
        );
    }

    #[test]
    fn where_and_eval_chains_iterate_and_nesting_is_bounded() {
        // Flat chains at the term limit evaluate without recursing per operand.
        let ones = vec!["1"; MAX_TERMS - 2].join(" + ");
        assert_eq!(parse_and_run(format!("* | where x < {ones}")).unwrap(), 3);
        let ors = vec!["x=1"; MAX_TERMS / 2 - 1].join(" OR ");
        assert_eq!(parse_and_run(format!("* | where {ors}")).unwrap(), 1);
        let cat = vec!["\"a\""; MAX_TERMS - 1].join(" . ");
        assert_eq!(parse_and_run(format!("* | eval s = {cat}")).unwrap(), 3);
        // Nesting at the limit runs; past it is an error naming the limit.
        let d = MAX_DEPTH;
        for (shape, at_limit, beyond) in [
            (
                "parentheses",
                format!("{}1{}", "(".repeat(d), ")".repeat(d)),
                format!("{}1{}", "(".repeat(2_000), ")".repeat(2_000)),
            ),
            (
                "NOT",
                format!("{}true", "NOT ".repeat(d)),
                format!("{}true", "NOT ".repeat(470)),
            ),
            (
                "minus",
                format!("{}1", "- ".repeat(d)),
                format!("{}1", "- ".repeat(d + 1)),
            ),
            (
                "calls",
                format!("{}x{}", "abs(".repeat(d), ")".repeat(d)),
                format!("{}x{}", "abs(".repeat(500), ")".repeat(500)),
            ),
        ] {
            for cmd in ["where", "eval y ="] {
                parse_and_run(format!("* | {cmd} {at_limit}"))
                    .unwrap_or_else(|e| panic!("{cmd} {shape} at the limit: {e}"));
                assert_limit(
                    parse_and_run(format!("* | {cmd} {beyond}")),
                    "nesting depth limit is 64",
                    shape,
                );
            }
        }
    }

    #[test]
    fn a_query_longer_than_the_limit_is_an_error_naming_it() {
        let q = format!("message=\"{}\"", "a".repeat(MAX_QUERY_LEN));
        let e = parse(&q).unwrap_err();
        assert!(
            e.message.contains("query length limit is 16384 bytes"),
            "{e}"
        );
        let q = format!("message=\"{}\"", "é".repeat(MAX_QUERY_LEN / 2));
        assert!(
            parse(&q).is_err(),
            "a limit inside a character still answers"
        );
        let q = format!("message=\"{}\"", "a".repeat(MAX_QUERY_LEN - 10));
        assert!(parse(&q).is_ok());
    }
}
