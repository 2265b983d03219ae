//! The SQL side: `embed(text) → real[]` (384 floats, unit length; NULL for NULL). Compare
//! embeddings with the executor's vector functions (`cosine_similarity` & co.).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Builder, ListBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, Result};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::embed::{Embedder, EMBEDDING_DIMENSIONS, MODEL_FILES};

/// The functions to register; `embed` needs a loaded model and says so when it has none.
pub fn functions(embedder: Option<Arc<Embedder>>) -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(Embed::new(embedder))]
}

fn vector_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true)))
}

#[derive(Debug)]
struct Embed {
    embedder: Option<Arc<Embedder>>,
    signature: Signature,
}

impl Embed {
    fn new(embedder: Option<Arc<Embedder>>) -> Self {
        // The same text always gives the same vector, so views and indexes may rely on it.
        Embed { embedder, signature: Signature::string(1, Volatility::Immutable) }
    }
}

impl PartialEq for Embed {
    fn eq(&self, other: &Self) -> bool {
        self.embedder.is_some() == other.embedder.is_some()
    }
}
impl Eq for Embed {}
impl std::hash::Hash for Embed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "embed".hash(state);
    }
}

impl ScalarUDFImpl for Embed {
    fn name(&self) -> &str {
        "embed"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(vector_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(embedder) = &self.embedder else {
            return exec_err!(
                "embed() needs the embedding model: set embedding_model_dir (--embedding-model-dir) to a folder holding \
                 all-MiniLM-L6-v2's {}",
                MODEL_FILES.join(", ")
            );
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let texts = args.args[0].to_array(args.number_rows)?;
        let texts = arrow::compute::cast(&texts, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let present: Vec<&str> = texts.iter().flatten().collect();
        let vectors = embedder.embed(&present).map_err(DataFusionError::Execution)?;
        let mut vectors = vectors.into_iter();
        let mut out = ListBuilder::with_capacity(Float32Builder::with_capacity(present.len() * EMBEDDING_DIMENSIONS), texts.len())
            .with_field(Arc::new(Field::new_list_field(DataType::Float32, true)));
        for i in 0..texts.len() {
            if texts.is_null(i) {
                out.append_null();
            } else {
                let v = vectors.next().expect("one vector per text");
                out.values().append_slice(&v);
                out.append(true);
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}
