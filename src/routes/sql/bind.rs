//! Hrana values to SQLite and back: binding arguments to parameters, reading columns and
//! values, and the two facts about SQL text the server needs before running it.

use rusqlite::Statement;
use rusqlite::types::ValueRef;

use super::error::{self, Phase};
use super::exec::ExecStmt;
use super::proto::{Col, Error, Value};

/// Binds positional then named arguments. Named arguments win over positional ones for the same
/// parameter; every parameter must receive a value ("it is an error if the request does not
/// specify an argument that is expected by the SQL statement").
pub(crate) fn bind(st: &mut Statement<'_>, stmt: &ExecStmt) -> Result<(), Error> {
    let count = st.parameter_count();
    if stmt.args.len() > count {
        return Err(Error::new(
            error::ARGS_INVALID,
            format!(
                "{} positional arguments given, the statement has {count} parameters",
                stmt.args.len()
            ),
        ));
    }
    let mut bound = vec![false; count];
    for (i, v) in stmt.args.iter().enumerate() {
        bind_value(st, i + 1, v)?;
        bound[i] = true;
    }
    for (name, v) in &stmt.named_args {
        let index = parameter_index(st, name)?.ok_or_else(|| {
            Error::new(
                error::ARGS_INVALID,
                format!("the statement has no parameter named {name:?}"),
            )
        })?;
        bind_value(st, index, v)?;
        if let Some(b) = bound.get_mut(index - 1) {
            *b = true;
        }
    }
    if let Some(missing) = bound.iter().position(|b| !b) {
        let index = missing + 1;
        let what = match st.parameter_name(index) {
            Some(name) => format!("parameter {name}"),
            None => format!("parameter {index}"),
        };
        return Err(Error::new(
            error::ARGS_INVALID,
            format!("no value was given for {what}"),
        ));
    }
    Ok(())
}

/// SQLite parameter names keep their prefix (`:`, `@`, `$`); "if the name of the argument does
/// not start with this prefix, the server will try to guess the correct prefix".
fn parameter_index(st: &Statement<'_>, name: &str) -> Result<Option<usize>, Error> {
    let lookup = |n: &str| {
        st.parameter_index(n)
            .map_err(|e| error::from_sqlite(&e, Phase::Bind))
    };
    if name.starts_with([':', '@', '$', '?']) {
        return lookup(name);
    }
    for prefix in [":", "@", "$"] {
        if let Some(i) = lookup(&format!("{prefix}{name}"))? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn bind_value(st: &mut Statement<'_>, index: usize, v: &Value) -> Result<(), Error> {
    let res = match v {
        Value::Null => st.raw_bind_parameter(index, rusqlite::types::Null),
        Value::Integer(i) => st.raw_bind_parameter(index, i),
        Value::Float(x) => st.raw_bind_parameter(index, x),
        Value::Text(t) => st.raw_bind_parameter(index, t.as_str()),
        Value::Blob(b) => st.raw_bind_parameter(index, b.as_slice()),
    };
    res.map_err(|e| error::from_sqlite(&e, Phase::Bind))
}

pub(crate) fn columns(st: &Statement<'_>) -> Vec<Col> {
    st.columns()
        .map(|c| Col {
            name: Some(c.name().to_owned()),
            decltype: c.decl_type().map(str::to_owned),
        })
        .collect()
}

pub(crate) fn cols_json_size(cols: &[Col]) -> usize {
    cols.iter()
        .map(|c| {
            28 + c.name.as_ref().map_or(4, String::len) + c.decltype.as_ref().map_or(4, String::len)
        })
        .sum::<usize>()
        + 96
}

pub(crate) fn value_from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(x) => Value::Float(x),
        // SQLite does not check that TEXT is UTF-8; invalid bytes are replaced.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// True if the text holds no statement: only whitespace, `;`, and `--` or `/* */` comments.
/// SQLite compiles such text to no statement at all.
pub(crate) fn is_blank_sql(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b';' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            _ => return false,
        }
    }
    true
}

/// `ROLLBACK` or `ROLLBACK TRANSACTION`, any case and spacing, optional `;` (not `ROLLBACK TO`
/// a savepoint).
pub(crate) fn is_rollback(sql: &str) -> bool {
    let sql = sql.trim().trim_end_matches(';');
    let mut words = sql.split_ascii_whitespace();
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("ROLLBACK"))
    {
        return false;
    }
    match words.next() {
        None => true,
        Some(w) => w.eq_ignore_ascii_case("TRANSACTION") && words.next().is_none(),
    }
}

/// `BEGIN TRANSACTION READONLY` / `BEGIN READONLY`, any case and spacing, optional `;`.
pub(crate) fn is_begin_readonly(sql: &str) -> bool {
    let sql = sql.trim().trim_end_matches(';');
    let mut words = sql.split_ascii_whitespace();
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("BEGIN"))
    {
        return false;
    }
    let mut w = words.next();
    if w.is_some_and(|w| w.eq_ignore_ascii_case("TRANSACTION")) {
        w = words.next();
    }
    w.is_some_and(|w| w.eq_ignore_ascii_case("READONLY")) && words.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_sql() {
        for blank in [
            "",
            "  ",
            ";",
            " ; ;\n",
            "-- hi",
            "-- a\n;",
            "/* x */",
            "/* x */ -- y\n;",
            "/* open",
        ] {
            assert!(is_blank_sql(blank), "{blank:?}");
        }
        for sql in ["SELECT 1", " -- c\n SELECT 1", "/**/x", "-"] {
            assert!(!is_blank_sql(sql), "{sql:?}");
        }
    }

    #[test]
    fn begin_readonly_detection() {
        for yes in [
            "BEGIN TRANSACTION READONLY",
            "begin  transaction\nreadonly;",
            "BEGIN READONLY",
        ] {
            assert!(is_begin_readonly(yes), "{yes:?}");
        }
        for no in [
            "BEGIN",
            "BEGIN IMMEDIATE",
            "BEGIN TRANSACTION",
            "BEGIN READONLY x",
            "SELECT 1",
        ] {
            assert!(!is_begin_readonly(no), "{no:?}");
        }
    }
}
