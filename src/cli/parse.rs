//! Flag values checked as they are parsed: a value out of range is a usage error (exit 2) that
//! names the flag, before any work. The library checks its own contracts again, in its own terms.
use bean_onnx::train::step::{BeanVariant, LossKind};

/// `--threads`: 0 (the engine decides) up to 4 × the cores; more only slows a run down, and a
/// huge count makes ONNX Runtime spend minutes creating threads.
pub fn threads(s: &str) -> Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = 4 * cores;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "expected 0 (the engine decides) to {max} (4 × the {cores} cores), got '{s}'"
        )),
    }
}

/// A count in `min..=max` (batch sizes, calibration rows, rounding).
pub fn count_in(min: usize, max: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s: &str| match s.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got '{s}'"
        )),
    }
}

fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("expected a number, got '{s}'"))
}

/// A finite number above 0 (learning rates).
pub fn positive(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| match v > 0.0 {
        true => Ok(v),
        false => Err(format!("expected a positive number, got {v}")),
    })
}

/// A finite number at least 0 (strengths, accuracy points).
pub fn non_negative(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| match v >= 0.0 {
        true => Ok(v),
        false => Err(format!("expected a number of at least 0, got {v}")),
    })
}

/// A number in [0, 1) (pruning ratios, momentum).
pub fn fraction(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| match (0.0..1.0).contains(&v) {
        true => Ok(v),
        false => Err(format!("expected a number in [0, 1), got {v}")),
    })
}

/// `--bean`: a BEAN variant, or `off` (None).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeanOrOff(pub Option<BeanVariant>);

pub fn bean_or_off(s: &str) -> Result<BeanOrOff, String> {
    match s {
        "off" => Ok(BeanOrOff(None)),
        v => v
            .parse()
            .map(|b| BeanOrOff(Some(b)))
            .map_err(|e| format!("{e}, off")),
    }
}

/// `--loss`: a loss, or `auto` (None: cross-entropy for labels or a teacher, MSE for float
/// targets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOrAuto(pub Option<LossKind>);

pub fn loss_or_auto(s: &str) -> Result<LossOrAuto, String> {
    match s {
        "auto" => Ok(LossOrAuto(None)),
        v => v
            .parse()
            .map(|l| LossOrAuto(Some(l)))
            .map_err(|e| format!("{e}, auto")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced_with_the_value_in_the_message() {
        assert_eq!(positive("1e-3"), Ok(1e-3));
        assert!(positive("0").unwrap_err().contains("positive"));
        assert!(positive("nan").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-5").unwrap_err().contains("-5"));
        assert_eq!(fraction("0.5"), Ok(0.5));
        assert!(fraction("1").is_err());
        assert!(fraction("-0.2").is_err());
        assert_eq!(count_in(2, 9)("2"), Ok(2));
        assert!(count_in(2, 9)("1").is_err());
        assert_eq!(bean_or_off("off"), Ok(BeanOrOff(None)));
        assert_eq!(bean_or_off("2"), Ok(BeanOrOff(Some(BeanVariant::Two))));
        assert!(bean_or_off("3").unwrap_err().contains("expected 1, 2, off"));
        assert_eq!(loss_or_auto("mse"), Ok(LossOrAuto(Some(LossKind::Mse))));
        assert!(threads("1000000").is_err());
    }
}
