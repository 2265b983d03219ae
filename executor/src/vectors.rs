//! Vector functions over arrays of numbers (embeddings, feature vectors), usable in
//! queries, views and materialized views: `cosine_similarity(a, b)`,
//! `euclidean_distance(a, b)`, `dot_product(a, b)` and `vector_norm(a)`, each returning
//! `double precision`. A NULL array or a NULL element gives NULL; arrays of different
//! lengths are an error; the cosine of a zero vector is NULL (undefined).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// The vector functions, to register with every session.
pub fn functions() -> Vec<ScalarUDF> {
    [Measure::CosineSimilarity, Measure::EuclideanDistance, Measure::DotProduct, Measure::Norm]
        .into_iter()
        .map(|measure| ScalarUDF::new_from_impl(VectorFunction::new(measure)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Measure {
    CosineSimilarity,
    EuclideanDistance,
    DotProduct,
    Norm,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::CosineSimilarity => "cosine_similarity",
            Measure::EuclideanDistance => "euclidean_distance",
            Measure::DotProduct => "dot_product",
            Measure::Norm => "vector_norm",
        }
    }

    fn arity(self) -> usize {
        if self == Measure::Norm {
            1
        } else {
            2
        }
    }

    /// The measure of one row (`y` is empty for the norm). `None`: undefined.
    fn of(self, x: &[f64], y: &[f64]) -> Option<f64> {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        match self {
            Measure::DotProduct => Some(dot(x, y)),
            Measure::Norm => Some(dot(x, x).sqrt()),
            Measure::EuclideanDistance => Some(x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum::<f64>().sqrt()),
            Measure::CosineSimilarity => {
                let denominator = dot(x, x).sqrt() * dot(y, y).sqrt();
                (denominator > 0.0).then(|| dot(x, y) / denominator)
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct VectorFunction {
    measure: Measure,
    signature: Signature,
}

impl VectorFunction {
    fn new(measure: Measure) -> Self {
        VectorFunction { measure, signature: Signature::any(measure.arity(), Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for VectorFunction {
    fn name(&self) -> &str {
        self.measure.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for t in args {
            let numeric_list = match t {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().is_numeric(),
                DataType::Null => true,
                _ => false,
            };
            if !numeric_list {
                return exec_err!("{} takes arrays of numbers, not {t}", self.name());
            }
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let as_f64_lists = |v: &ColumnarValue| -> Result<ArrayRef> {
            let array = v.to_array(args.number_rows)?;
            let target = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
            Ok(arrow::compute::cast(&array, &target)?)
        };
        let lists = args.args.iter().map(as_f64_lists).collect::<Result<Vec<_>>>()?;
        let lists: Vec<_> = lists.iter().map(|l| l.as_list::<i32>()).collect();
        let mut out = Vec::with_capacity(args.number_rows);
        'rows: for row in 0..args.number_rows {
            let mut vectors = Vec::with_capacity(lists.len());
            for list in &lists {
                if list.is_null(row) {
                    out.push(None);
                    continue 'rows;
                }
                let values = list.value(row);
                if values.null_count() > 0 {
                    out.push(None);
                    continue 'rows;
                }
                vectors.push(values.as_primitive::<Float64Type>().values().to_vec());
            }
            let (x, y) = match vectors.as_slice() {
                [x] => (x.as_slice(), &[][..]),
                [x, y] if x.len() != y.len() => {
                    return exec_err!("{} of arrays of {} and {} elements", self.name(), x.len(), y.len());
                }
                [x, y] => (x.as_slice(), y.as_slice()),
                _ => return exec_err!("{} takes {} arrays", self.name(), self.measure.arity()),
            };
            out.push(self.measure.of(x, y));
        }
        let array: ArrayRef = Arc::new(Float64Array::from(out));
        Ok(if scalar { ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?) } else { ColumnarValue::Array(array) })
    }
}

#[cfg(test)]
mod tests {
    use super::Measure;

    #[test]
    fn measures_of_known_vectors() {
        let (x, y) = ([3.0, 4.0], [4.0, 3.0]);
        assert_eq!(Measure::DotProduct.of(&x, &y), Some(24.0));
        assert_eq!(Measure::Norm.of(&x, &[]), Some(5.0));
        assert_eq!(Measure::EuclideanDistance.of(&x, &y), Some(2f64.sqrt()));
        assert_eq!(Measure::CosineSimilarity.of(&x, &y), Some(24.0 / 25.0));
        assert_eq!(Measure::CosineSimilarity.of(&[0.0, 0.0], &y), None, "undefined for a zero vector");
    }
}
