//! Streaming functions: `zscore(x)`, `anomaly(x, threshold)` and `moving_avg(x, n)`.
//!
//! They are aggregates, because an aggregate is what both halves of the system can run:
//! a materialized view maintains it incrementally per group (`SELECT sensor, zscore(temp)
//! FROM readings GROUP BY sensor`: each sensor's latest reading against all its readings
//! so far, updated as rows arrive), and a SELECT runs it over a sliding window
//! (`zscore(temp) OVER (PARTITION BY sensor ORDER BY at ROWS BETWEEN 99 PRECEDING AND
//! CURRENT ROW)`: each reading against the 100 before it). "Latest" is the last non-NULL
//! value in the order rows reach the function: a view applies rows in arrival (offset)
//! order; a SELECT says its order with `OVER (ORDER BY …)` (a plain GROUP BY over a table
//! of several partitions has no order).
//!
//! * `zscore(x)`: (latest − mean) / sample standard deviation; NULL below two values or
//!   when every value is the same.
//! * `anomaly(x, threshold)`: whether |zscore(x)| exceeds `threshold` (false below two
//!   values).
//! * `moving_avg(x, n)`: the mean of the latest `n` values.
//!
//! States merge (so views can maintain them and DataFusion can aggregate in parallel)
//! and retract (so sliding window frames do not recompute each frame).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use datafusion::prelude::SessionContext;

/// The functions whose result depends on which value is the latest: a materialized view
/// feeds them rows in arrival order and refuses an ORDER BY it could not keep across steps.
pub const LATEST_BY_ARRIVAL: [&str; 3] = ["zscore", "anomaly", "moving_avg"];

/// The largest `n` of `moving_avg` (its state keeps `n` values per group, rewritten in a
/// view's state table at each step that touches the group).
pub const MAX_MOVING_AVG_WINDOW: i64 = 10_000;
/// A standard deviation this small relative to the mean is rounding residue, not spread.
const RESIDUE: f64 = 1e-12;

pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::from(Deviation::zscore()));
    ctx.register_udaf(AggregateUDF::from(Deviation::anomaly()));
    ctx.register_udaf(AggregateUDF::from(MovingAvg::new()));
}

/// `zscore` and `anomaly`: both read how far the latest value is from the mean.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Deviation {
    name: &'static str,
    signature: Signature,
}

impl Deviation {
    fn zscore() -> Self {
        Deviation { name: "zscore", signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable) }
    }

    fn anomaly() -> Self {
        let signature = Signature::one_of(vec![TypeSignature::Exact(vec![DataType::Float64, DataType::Float64])], Volatility::Immutable);
        Deviation { name: "anomaly", signature }
    }

    fn is_anomaly(&self) -> bool {
        self.name == "anomaly"
    }
}

impl AggregateUDFImpl for Deviation {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(if self.is_anomaly() { DataType::Boolean } else { DataType::Float64 })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let threshold = match self.is_anomaly() {
            true => Some(literal_f64(&args, 1, "anomaly", "threshold")?),
            false => None,
        };
        Ok(Box::new(DeviationAccumulator { threshold, ..Default::default() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let field = |what: &str, data_type| Arc::new(Field::new(format!("{}[{what}]", args.name), data_type, true));
        Ok(vec![field("count", DataType::Int64), field("mean", DataType::Float64), field("m2", DataType::Float64), field("latest", DataType::Float64)])
    }
}

/// Welford's running mean and squared deviations, and the latest value.
#[derive(Debug, Default)]
struct DeviationAccumulator {
    count: i64,
    mean: f64,
    m2: f64,
    latest: Option<f64>,
    /// `anomaly`'s threshold; `None` for `zscore`.
    threshold: Option<f64>,
}

impl DeviationAccumulator {
    fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.latest = Some(x);
    }

    fn zscore(&self) -> Option<f64> {
        if self.count < 2 {
            return None;
        }
        let deviation = (self.m2.max(0.0) / (self.count - 1) as f64).sqrt();
        let latest = self.latest?;
        // Retracting values leaves rounding residue where the deviation is really 0.
        (deviation > RESIDUE * self.mean.abs()).then(|| (latest - self.mean) / deviation)
    }
}

impl Accumulator for DeviationAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.add(x);
        }
        Ok(())
    }

    /// Sliding frames drop their oldest values; the latest stays.
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.count -= 1;
            if self.count <= 0 {
                (self.count, self.mean, self.m2) = (0, 0.0, 0.0);
                continue;
            }
            let delta = x - self.mean;
            self.mean -= delta / self.count as f64;
            self.m2 -= delta * (x - self.mean);
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(match self.threshold {
            None => ScalarValue::Float64(self.zscore()),
            Some(threshold) => ScalarValue::Boolean(Some(self.zscore().is_some_and(|z| z.abs() > threshold))),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.count)), ScalarValue::Float64(Some(self.mean)), ScalarValue::Float64(Some(self.m2)), ScalarValue::Float64(self.latest)])
    }

    /// Chan's parallel combination; the later state's latest value wins.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<Int64Type>();
        let (means, m2s, latest) = (states[1].as_primitive::<Float64Type>(), states[2].as_primitive::<Float64Type>(), states[3].as_primitive::<Float64Type>());
        for row in 0..states[0].len() {
            let other = if counts.is_valid(row) { counts.value(row) } else { 0 };
            if other == 0 {
                continue;
            }
            let (other_mean, other_m2) = (means.value(row), m2s.value(row));
            let total = self.count + other;
            let delta = other_mean - self.mean;
            self.mean += delta * other as f64 / total as f64;
            self.m2 += other_m2 + delta * delta * self.count as f64 * other as f64 / total as f64;
            self.count = total;
            if latest.is_valid(row) {
                self.latest = Some(latest.value(row));
            }
        }
        Ok(())
    }
}

/// `moving_avg(x, n)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MovingAvg {
    signature: Signature,
}

impl MovingAvg {
    fn new() -> Self {
        let signature = Signature::one_of(vec![TypeSignature::Exact(vec![DataType::Float64, DataType::Int64])], Volatility::Immutable);
        MovingAvg { signature }
    }
}

impl AggregateUDFImpl for MovingAvg {
    fn name(&self) -> &str {
        "moving_avg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let n = literal_f64(&args, 1, "moving_avg", "n")?;
        if n.fract() != 0.0 || !(1.0..=MAX_MOVING_AVG_WINDOW as f64).contains(&n) {
            return Err(invalid(format!("moving_avg(x, n): n must be a whole number from 1 to {MAX_MOVING_AVG_WINDOW}, not {n}")));
        }
        Ok(Box::new(MovingAvgAccumulator { n: n as usize, values: VecDeque::new(), forgotten: 0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new_list_field(DataType::Float64, true));
        Ok(vec![Arc::new(Field::new(format!("{}[latest]", args.name), DataType::List(item), true))])
    }
}

/// The latest `n` values, oldest first.
#[derive(Debug)]
struct MovingAvgAccumulator {
    n: usize,
    values: VecDeque<f64>,
    /// Values that left `values` for being more than `n` back but are still in a sliding
    /// frame: retracted before any kept value.
    forgotten: usize,
}

impl MovingAvgAccumulator {
    fn push(&mut self, x: f64) {
        self.values.push_back(x);
        if self.values.len() > self.n {
            self.values.pop_front();
            self.forgotten += 1;
        }
    }
}

impl Accumulator for MovingAvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.push(x);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for _ in values[0].as_primitive::<Float64Type>().iter().flatten() {
            if self.forgotten > 0 {
                self.forgotten -= 1;
            } else if self.values.pop_front().is_none() {
                return exec_err!("moving_avg retracted more values than it holds");
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let count = self.values.len();
        Ok(ScalarValue::Float64((count > 0).then(|| self.values.iter().sum::<f64>() / count as f64)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from_iter_values(self.values.iter().copied());
        Ok(vec![ScalarValue::List(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        )))])
    }

    /// The later state's values come after this one's.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            for x in lists.value(row).as_primitive::<Float64Type>().iter().flatten() {
                self.push(x);
            }
        }
        Ok(())
    }
}

/// A constant argument (`anomaly`'s threshold, `moving_avg`'s n) as a float.
fn literal_f64(args: &AccumulatorArgs, at: usize, function: &str, what: &str) -> Result<f64> {
    let value = args.exprs.get(at).and_then(|e| e.downcast_ref::<Literal>()).map(|l| l.value().clone());
    let number = match value {
        Some(ScalarValue::Float64(Some(v))) => Some(v),
        Some(ScalarValue::Int64(Some(v))) => Some(v as f64),
        Some(other) if !other.is_null() => other.cast_to(&DataType::Float64).ok().and_then(|v| match v {
            ScalarValue::Float64(v) => v,
            _ => None,
        }),
        _ => None,
    };
    match number {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err(invalid(format!("{function}: {what} must be a constant number"))),
    }
}

/// An argument PostgreSQL would call an invalid parameter value (22023).
fn invalid(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::Error::InvalidParameter(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(values: &[f64]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    fn zscore_of(values: &[f64]) -> Option<f64> {
        let mut acc = DeviationAccumulator::default();
        acc.update_batch(&[floats(values)]).unwrap();
        acc.zscore()
    }

    #[test]
    fn zscore_is_the_latest_value_against_all_values() {
        // mean 5, sample sd sqrt(32/7): the latest (9) is 1.8708 sd above.
        let z = zscore_of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((z - 4.0 / (32.0f64 / 7.0).sqrt()).abs() < 1e-12, "{z}");
        assert_eq!(zscore_of(&[3.0]), None);
        assert_eq!(zscore_of(&[3.0, 3.0, 3.0]), None);
    }

    #[test]
    fn merged_states_equal_one_pass_and_the_later_state_is_latest() {
        let values = [1.5, 8.0, -2.0, 4.25, 3.0, 10.0, 0.5];
        let mut early = DeviationAccumulator::default();
        early.update_batch(&[floats(&values[..3])]).unwrap();
        let mut late = DeviationAccumulator::default();
        late.update_batch(&[floats(&values[3..])]).unwrap();
        let mut merged = DeviationAccumulator::default();
        for part in [&mut early, &mut late] {
            let state = part.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect::<Vec<_>>();
            merged.merge_batch(&state).unwrap();
        }
        let (z, want) = (merged.zscore().unwrap(), zscore_of(&values).unwrap());
        assert!((z - want).abs() < 1e-12, "{z} vs {want}");
    }

    #[test]
    fn retracting_the_oldest_values_gives_the_frame_of_the_newest() {
        let mut acc = DeviationAccumulator::default();
        acc.update_batch(&[floats(&[100.0, -50.0, 1.0, 2.0, 4.0])]).unwrap();
        acc.retract_batch(&[floats(&[100.0, -50.0])]).unwrap();
        let want = zscore_of(&[1.0, 2.0, 4.0]).unwrap();
        assert!((acc.zscore().unwrap() - want).abs() < 1e-9);
    }

    #[test]
    fn moving_avg_keeps_the_latest_n_and_retracts_in_order() {
        let mut acc = MovingAvgAccumulator { n: 3, values: VecDeque::new(), forgotten: 0 };
        acc.update_batch(&[floats(&[1.0, 2.0, 3.0, 4.0, 5.0])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(4.0)));
        // A frame of 4 rows sliding by one: 1 leaves (already forgotten), 6 arrives.
        acc.retract_batch(&[floats(&[1.0])]).unwrap();
        acc.update_batch(&[floats(&[6.0])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(5.0)));
        let state = acc.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect::<Vec<_>>();
        let mut merged = MovingAvgAccumulator { n: 2, values: VecDeque::from([100.0]), forgotten: 0 };
        merged.merge_batch(&state).unwrap();
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::Float64(Some(5.5)));
    }
}
