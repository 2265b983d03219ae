//! A statement that fails from inside — a bug that panics while it is planned — ends as
//! that statement's internal error (XX000); the session goes on serving the next one.

use arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use streamhouse_executor::{Engine, Output};
use streamhouse_streams::{store, Catalog, Streams, StreamsConfig};
use streamhouse_wal::WalConfig;

/// `boom()`: panics when evaluated. Immutable, so the planner folds it — it runs while
/// the statement is planned.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Boom(Signature);

impl ScalarUDFImpl for Boom {
    fn name(&self) -> &str {
        "boom"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        panic!("boom() was called")
    }
}

#[tokio::test]
async fn a_panic_while_planning_is_the_statements_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::connect(&format!("sqlite://{}", dir.path().join("catalog.db").display())).await.unwrap();
    let segments = store::open(dir.path().join("segments").to_str().unwrap()).unwrap();
    let streams = Streams::open(catalog, segments, WalConfig::new(dir.path().join("wal")), StreamsConfig::default()).await.unwrap();
    let boom = ScalarUDF::new_from_impl(Boom(Signature::exact(vec![], Volatility::Immutable)));
    let engine = Engine::new(streams, vec![boom]).unwrap();
    let mut session = engine.session();

    let statement = session.parse("SELECT boom()").unwrap().remove(0);
    let error = session.execute(&statement, None).await.err().expect("the panic is an error");
    assert_eq!(error.sqlstate(), "XX000");
    assert!(error.to_string().contains("boom() was called"), "{error}");

    let statement = session.parse("SELECT 41 + 1").unwrap().remove(0);
    let Output::Rows(rows) = session.execute(&statement, None).await.unwrap() else { panic!("rows expected") };
    let batches: Vec<_> = futures::TryStreamExt::try_collect(rows).await.unwrap();
    assert_eq!(batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0), 42);
}
