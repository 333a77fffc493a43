//! Python's `int()`/`float()`/`str()` casts of widget values and the numeric comparisons of
//! the min/max checks, with Python's error messages.

use std::cmp::Ordering;

use serde_json::Value;

use crate::pyfmt::{py_str, py_str_repr, py_type_name};

/// A JSON number holding a Python int of any size up to i128.
pub fn int_value(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Value::from(v)
    } else {
        Value::from(i as f64)
    }
}

/// `int(v)`; `Err` is `str(exception)`.
pub fn py_int(v: &Value) -> Result<Value, String> {
    match v {
        Value::Bool(b) => Ok(Value::from(i64::from(*b))),
        Value::Number(n) if !n.is_f64() => Ok(v.clone()),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.is_nan() {
                Err("cannot convert float NaN to integer".into())
            } else if f.is_infinite() {
                Err("cannot convert float infinity to integer".into())
            } else {
                Ok(int_value(f.trunc() as i128))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            let digits_ok = !t.starts_with('_') && !t.ends_with('_') && !t.contains("__");
            t.replace('_', "")
                .parse::<i128>()
                .ok()
                .filter(|_| digits_ok)
                .map(int_value)
                .ok_or_else(|| {
                    format!("invalid literal for int() with base 10: {}", py_str_repr(s))
                })
        }
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type_name(other)
        )),
    }
}

/// `float(v)`; `Err` is `str(exception)`.
pub fn py_float(v: &Value) -> Result<Value, String> {
    let f = match v {
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("could not convert string to float: {}", py_str_repr(s)))?,
        other => {
            return Err(format!(
                "float() argument must be a string or a real number, not '{}'",
                py_type_name(other)
            ));
        }
    };
    // JSON cannot hold nan/inf; they fail every min/max comparison, as NaN does in Python.
    Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
}

/// `str(v)`.
pub fn py_string(v: &Value) -> Value {
    Value::String(py_str(v))
}

/// Numeric order of two JSON numbers, exact for integers; `None` if either is not a number.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    let int = |v: &Value| {
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_casts() {
        assert_eq!(py_int(&json!("12")), Ok(json!(12)));
        assert_eq!(py_int(&json!(3.9)), Ok(json!(3)));
        assert_eq!(py_int(&json!(true)), Ok(json!(1)));
        assert_eq!(
            py_int(&json!("abc")),
            Err("invalid literal for int() with base 10: 'abc'".into())
        );
        assert!(
            py_int(&json!(null))
                .unwrap_err()
                .ends_with("not 'NoneType'")
        );
        assert_eq!(py_float(&json!("1.5")), Ok(json!(1.5)));
        assert_eq!(py_float(&json!(2)), Ok(json!(2.0)));
        assert_eq!(
            compare(&json!(u64::MAX), &json!(u64::MAX)),
            Some(Ordering::Equal)
        );
        assert_eq!(compare(&json!(0), &json!(1)), Some(Ordering::Less));
    }
}
