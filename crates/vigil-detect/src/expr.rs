//! Boolean expressions over atoms: what a compiled rule is.

use crate::fieldmatch::Hits;

/// A compiled condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A constant.
    Const(bool),
    /// An atom's bit.
    Atom(u32),
    /// Negation.
    Not(Box<Expr>),
    /// All hold.
    And(Vec<Expr>),
    /// Any holds.
    Or(Vec<Expr>),
    /// At least `n` hold.
    AtLeast(usize, Vec<Expr>),
}

impl Expr {
    /// Negation, folding constants and double negations.
    pub fn negate(e: Expr) -> Expr {
        match e {
            Expr::Const(b) => Expr::Const(!b),
            Expr::Not(inner) => *inner,
            e => Expr::Not(Box::new(e)),
        }
    }

    /// Conjunction, flattened and with constants folded.
    pub fn and(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            match i {
                Expr::Const(true) => {}
                Expr::Const(false) => return Expr::Const(false),
                Expr::And(inner) => out.extend(inner),
                e => out.push(e),
            }
        }
        match out.len() {
            0 => Expr::Const(true),
            1 => out.remove(0),
            _ => Expr::And(out),
        }
    }

    /// Disjunction, flattened and with constants folded.
    pub fn or(items: Vec<Expr>) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            match i {
                Expr::Const(false) => {}
                Expr::Const(true) => return Expr::Const(true),
                Expr::Or(inner) => out.extend(inner),
                e => out.push(e),
            }
        }
        match out.len() {
            0 => Expr::Const(false),
            1 => out.remove(0),
            _ => Expr::Or(out),
        }
    }

    /// At least `n` of `items`.
    pub fn at_least(n: usize, items: Vec<Expr>) -> Expr {
        if n <= 1 {
            return Expr::or(items);
        }
        if n == items.len() {
            return Expr::and(items);
        }
        if n > items.len() {
            return Expr::Const(false);
        }
        Expr::AtLeast(n, items)
    }

    /// Evaluates against the atoms that hit.
    pub fn eval(&self, hits: &Hits) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Atom(a) => hits.get(*a),
            Expr::Not(e) => !e.eval(hits),
            Expr::And(items) => items.iter().all(|e| e.eval(hits)),
            Expr::Or(items) => items.iter().any(|e| e.eval(hits)),
            Expr::AtLeast(n, items) => {
                let mut count = 0;
                for e in items {
                    if e.eval(hits) {
                        count += 1;
                        if count >= *n {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    /// The value when no atom hits. When false, the expression can only hold if one of its
    /// atoms hits, so it need not be evaluated for events that hit none of them.
    pub fn eval_none(&self) -> bool {
        self.eval(&Hits::new(0))
    }

    /// Every atom the expression reads.
    pub fn atoms(&self, out: &mut Vec<u32>) {
        match self {
            Expr::Const(_) => {}
            Expr::Atom(a) => out.push(*a),
            Expr::Not(e) => e.atoms(out),
            Expr::And(items) | Expr::Or(items) | Expr::AtLeast(_, items) => {
                for e in items {
                    e.atoms(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_eval() {
        assert_eq!(
            Expr::and(vec![Expr::Const(true), Expr::Atom(1)]),
            Expr::Atom(1)
        );
        assert_eq!(
            Expr::or(vec![Expr::Const(true), Expr::Atom(1)]),
            Expr::Const(true)
        );
        assert_eq!(Expr::negate(Expr::negate(Expr::Atom(2))), Expr::Atom(2));
        let e = Expr::and(vec![Expr::Atom(0), Expr::negate(Expr::Atom(1))]);
        assert!(!e.eval_none());
        assert!(Expr::negate(Expr::Atom(0)).eval_none());
        let mut h = Hits::new(3);
        h.set(0);
        assert!(e.eval(&h));
        h.set(1);
        assert!(!e.eval(&h));
        let two = Expr::at_least(2, vec![Expr::Atom(0), Expr::Atom(1), Expr::Atom(2)]);
        assert!(two.eval(&h));
        h.clear();
        h.set(2);
        assert!(!two.eval(&h));
    }
}
