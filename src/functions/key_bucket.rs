//! `key_bucket(key, buckets)`: a stable bucket, 0 to `buckets` − 1, of a key — the same
//! on every machine, in every run and for every layout of the key's text (string,
//! string view, large string). A window `PARTITION BY key_bucket(key, n)` splits rows by
//! key without a window partition per key (`island_number`'s partition-aware form, see
//! `sql/intermediate/purchase_days.sql`): a key's rows all land in one bucket, and a
//! cluster spreads the buckets over its executors.
//!
//! The bucket is the 64-bit FNV-1a hash (Fowler, Noll & Vo) of the key's UTF-8 bytes (of
//! its eight little-endian bytes for an integer) modulo `buckets`. A null key has no
//! bucket.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KeyBucket {
    signature: Signature,
}

impl KeyBucket {
    pub fn new() -> Self {
        let keys = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8, DataType::Int64, DataType::Int32];
        let signatures = keys.iter().map(|key| TypeSignature::Exact(vec![key.clone(), DataType::Int64])).collect();
        KeyBucket { signature: Signature::one_of(signatures, Volatility::Immutable) }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME))
}

/// The bucket of a key hashed to `hash`, among `buckets`.
fn bucket(hash: u64, buckets: u64) -> i32 {
    // `buckets` is checked to fit an i32, so the remainder does too.
    (hash % buckets) as i32
}

impl ScalarUDFImpl for KeyBucket {
    fn name(&self) -> &str {
        "key_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key, buckets] = args.args.as_slice() else {
            return exec_err!("key_bucket takes a key and a number of buckets");
        };
        let buckets = match buckets {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) if (1..=i64::from(i32::MAX)).contains(n) => *n as u64,
            _ => return exec_err!("key_bucket: the number of buckets must be a constant from 1 to {}", i32::MAX),
        };
        let keys = key.to_array(args.number_rows)?;
        let buckets: Int32Array = match keys.data_type() {
            DataType::Utf8View => {
                keys.as_string_view().iter().map(|k| k.map(|k| bucket(fnv1a(k.as_bytes()), buckets))).collect()
            }
            DataType::Utf8 => {
                keys.as_string::<i32>().iter().map(|k| k.map(|k| bucket(fnv1a(k.as_bytes()), buckets))).collect()
            }
            DataType::LargeUtf8 => {
                keys.as_string::<i64>().iter().map(|k| k.map(|k| bucket(fnv1a(k.as_bytes()), buckets))).collect()
            }
            DataType::Int64 => keys
                .as_primitive::<Int64Type>()
                .iter()
                .map(|k| k.map(|k| bucket(fnv1a(&k.to_le_bytes()), buckets)))
                .collect(),
            DataType::Int32 => keys
                .as_primitive::<Int32Type>()
                .iter()
                .map(|k| k.map(|k| bucket(fnv1a(&i64::from(k).to_le_bytes()), buckets)))
                .collect(),
            other => return exec_err!("key_bucket: keys of type {other} are not supported"),
        };
        Ok(match key {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&buckets, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(buckets) as ArrayRef),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, LargeStringArray, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    fn buckets_of(keys: ArrayRef, buckets: i64) -> Vec<Option<i32>> {
        let rows = keys.len();
        let args = ScalarFunctionArgs {
            arg_fields: vec![
                Arc::new(Field::new("key", keys.data_type().clone(), true)),
                Arc::new(Field::new("buckets", DataType::Int64, false)),
            ],
            args: vec![ColumnarValue::Array(keys), ColumnarValue::Scalar(ScalarValue::Int64(Some(buckets)))],
            number_rows: rows,
            return_field: Arc::new(Field::new("bucket", DataType::Int32, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let ColumnarValue::Array(result) = KeyBucket::new().invoke_with_args(args).unwrap() else {
            panic!("an array of buckets")
        };
        result.as_primitive::<Int32Type>().iter().collect()
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_key_has_the_same_bucket_whatever_the_layout_of_its_text() {
        let keys = ["C0000001", "C0000002", "a customer", ""];
        let plain = buckets_of(Arc::new(StringArray::from(keys.to_vec())), 1024);
        assert_eq!(plain, buckets_of(Arc::new(StringViewArray::from(keys.to_vec())), 1024));
        assert_eq!(plain, buckets_of(Arc::new(LargeStringArray::from(keys.to_vec())), 1024));
        assert_eq!(plain[3], Some((0xcbf2_9ce4_8422_2325u64 % 1024) as i32), "the empty key hashes to the offset");
        assert!(plain.iter().flatten().all(|b| (0..1024).contains(b)));
    }

    #[test]
    fn null_keys_have_no_bucket_and_one_bucket_holds_every_key() {
        let keys: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None, Some("y")]));
        assert_eq!(buckets_of(Arc::clone(&keys), 1), vec![Some(0), None, Some(0)]);
        let integers: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None]));
        assert_eq!(buckets_of(integers, 1), vec![Some(0), None]);
    }

    #[test]
    fn keys_spread_over_the_buckets() {
        let keys: Vec<String> = (0..10_000).map(|n| format!("C{n:07}")).collect();
        let buckets = buckets_of(Arc::new(StringArray::from(keys)), 8);
        let mut counts = [0usize; 8];
        for bucket in buckets.into_iter().flatten() {
            counts[bucket as usize] += 1;
        }
        assert!(counts.iter().all(|&n| (1_000..1_500).contains(&n)), "about 1,250 keys per bucket: {counts:?}");
    }
}
