//! The syntax tree of a pipeline query. Plain data: no serde, no I/O.

use std::net::IpAddr;

/// A whole query: an optional search part, then commands.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// What events to select (`None`: all).
    pub search: Option<Expr>,
    /// `earliest=` from the search part, as a relative or absolute time.
    pub earliest: Option<TimeSpec>,
    /// `latest=` from the search part.
    pub latest: Option<TimeSpec>,
    /// The commands after `|`, in order.
    pub commands: Vec<Command>,
}

/// A time bound as written: `-1h`, `-7d@d`-less relative times, `now`, or RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSpec {
    /// Seconds relative to now (negative is the past).
    Relative(i64),
    /// Nanoseconds since the epoch.
    Absolute(i64),
}

/// A search expression.
///
/// `AND` and `OR` are n-ary: `a OR b OR c` is one `Or` of three, so a long flat chain is walked
/// by iteration, never by one recursion per term. How deep a tree may nest is bounded by the
/// parser ([`crate::parse::MAX_DEPTH`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of them (at least two).
    And(Vec<Expr>),
    /// Any of them (at least two).
    Or(Vec<Expr>),
    /// Not.
    Not(Box<Expr>),
    /// A bare term or "phrase": matched, case-insensitively, in `message` and `event.original`.
    Text(Pattern),
    /// `field OP value`.
    Compare {
        /// Field name as written (aliases resolve at evaluation).
        field: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side.
        value: Literal,
    },
    /// `field IN (a, b, …)`.
    In {
        /// Field name.
        field: String,
        /// Values; any may match.
        values: Vec<Literal>,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string, possibly with `*` wildcards.
    Text(Pattern),
    /// A number.
    Number(f64),
    /// An address range (`10.0.0.0/8`).
    Cidr(IpAddr, u8),
}

/// Text with optional `*` wildcards, matched case-insensitively for search terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written, without quotes.
    pub text: String,
    /// Whether it holds a `*` wildcard.
    pub wildcard: bool,
}

/// A pipeline command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `search EXPR`: filter again.
    Search(Expr),
    /// `where BOOL-EXPR`.
    Where(Calc),
    /// `stats AGG… [by FIELD…]`.
    Stats {
        /// Aggregations.
        aggs: Vec<Agg>,
        /// Group-by fields.
        by: Vec<String>,
    },
    /// `timechart span=5m AGG… [by FIELD]`.
    Timechart {
        /// Bucket width in seconds.
        span: i64,
        /// Aggregations.
        aggs: Vec<Agg>,
        /// Optional split field.
        by: Option<String>,
    },
    /// `top [N] FIELD… [by FIELD…]` (most common values) or `rare` (least common).
    Top {
        /// How many rows.
        limit: usize,
        /// Fields whose value combinations are counted.
        fields: Vec<String>,
        /// Least common first instead.
        rare: bool,
    },
    /// `sort [N] [-]FIELD, …`.
    Sort {
        /// Keys; `true` means descending.
        keys: Vec<(String, bool)>,
        /// Optional limit.
        limit: Option<usize>,
    },
    /// `head N`.
    Head(usize),
    /// `tail N`.
    Tail(usize),
    /// `table FIELD…`.
    Table(Vec<String>),
    /// `fields [-] FIELD…`.
    Fields {
        /// Remove instead of keep.
        remove: bool,
        /// Fields.
        fields: Vec<String>,
    },
    /// `dedup FIELD…`.
    Dedup(Vec<String>),
    /// `eval FIELD = EXPR, …`.
    Eval(Vec<(String, Calc)>),
    /// `rename A as B, …`.
    Rename(Vec<(String, String)>),
    /// The part of an aggregating command (`stats` or `timechart`) one shard of a cluster runs:
    /// the same groups, but each cell holds its aggregation's mergeable state instead of the
    /// final value (see [`crate::distributed`]). The parser never produces it.
    Partial(Box<Command>),
}

/// An aggregation in `stats` or `timechart`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    /// Function.
    pub func: AggFunc,
    /// Its field (none for `count`).
    pub field: Option<String>,
    /// Output column name (`as NAME`, else `func(field)` or `count`).
    pub name: String,
}

/// Aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggFunc {
    /// Number of rows (or of rows with the field).
    Count,
    /// Distinct values.
    DistinctCount,
    /// Sum.
    Sum,
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Distinct values, sorted (at most 100: the smallest).
    Values,
    /// Value at the earliest event time.
    Earliest,
    /// Value at the latest event time.
    Latest,
    /// Percentile (0–100).
    Percentile(f64),
}

/// An expression of `where` and `eval`.
///
/// Chains of one precedence level (`a + b + c`, `x OR y OR z`) are left-deep `Binary` nodes; the
/// evaluator walks their left spine by iteration, so only nesting (bounded by
/// [`crate::parse::MAX_DEPTH`]) costs stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Calc {
    /// A field's value.
    Field(String),
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// Binary operation.
    Binary(Box<Calc>, BinOp, Box<Calc>),
    /// `NOT x`, `-x`.
    Unary(UnaryOp, Box<Calc>),
    /// Function call.
    Call(String, Vec<Calc>),
}

/// Binary operators of `where`/`eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `.` (string concatenation)
    Concat,
    /// Comparison.
    Cmp(CmpOp),
    /// `AND`
    And,
    /// `OR`
    Or,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`
    Not,
    /// `-`
    Neg,
}
