//! How plans cross a cluster's processes: Ballista's codecs, plus what only fidelis
//! knows — the [`WriteResult`] node and its [`WriteResultExec`], and the form of a
//! window function whose name alone does not say it (`island_number` numbering all
//! rows at once, or streaming; see `crate::functions::stream_windows`).
//!
//! fidelis's own nodes are encoded behind [`TAG`]: a zero byte never starts a protobuf
//! message (field number 0 does not exist), so nothing Ballista encodes is taken for one.

use std::fmt;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use super::write::{WriteResult, WriteResultExec};
use crate::functions;
use crate::storage::Storage;

/// What fidelis's own encodings start with.
const TAG: &[u8] = b"\0fidelis:";

/// The form byte of a window function sent in its streaming form.
const STREAMING: u8 = 1;

/// `payload` behind the tag, if `buf` is one of fidelis's encodings.
fn tagged(buf: &[u8]) -> Option<&[u8]> {
    buf.strip_prefix(TAG)
}

fn tag(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(TAG);
    buf.extend_from_slice(payload);
}

/// A window function's form: nothing for the one its name registers, [`STREAMING`] for
/// the streaming form.
fn encode_window(udwf: &WindowUDF, buf: &mut Vec<u8>) {
    if functions::is_streaming_window(udwf) {
        buf.push(STREAMING);
    }
}

fn decode_window(name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
    match (buf, functions::streaming_window(name)) {
        ([STREAMING], Some(streaming)) => Ok(Arc::new(streaming)),
        _ => Err(DataFusionError::Internal(format!("window function `{name}` has no form {buf:?}"))),
    }
}

/// The folder of a write node, from its encoding.
fn folder(payload: &[u8]) -> Result<String> {
    String::from_utf8(payload.to_vec())
        .map_err(|_| DataFusionError::Internal("the folder of a written result is not UTF-8".into()))
}

/// Ballista's logical codec with fidelis's nodes and window forms.
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalCodec {
    pub fn new() -> Self {
        LogicalCodec { ballista: BallistaLogicalExtensionCodec::default() }
    }
}

impl fmt::Debug for LogicalCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fidelis LogicalCodec")
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        match (tagged(buf), inputs) {
            (Some(payload), [input]) => {
                let node = WriteResult::new(input.clone(), folder(payload)?)?;
                Ok(Extension { node: Arc::new(node) })
            }
            (Some(_), _) => Err(DataFusionError::Internal("a written result has one input".into())),
            (None, _) => self.ballista.try_decode(buf, inputs, ctx),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        match node.node.as_any().downcast_ref::<WriteResult>() {
            Some(write) => {
                tag(buf, write.folder().as_bytes());
                Ok(())
            }
            None => self.ballista.try_encode(node, buf),
        }
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        self.ballista.try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.ballista.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(&self, buf: &mut Vec<u8>, node: Arc<dyn FileFormatFactory>) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        decode_window(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_window(node, buf);
        Ok(())
    }
}

/// Ballista's physical codec with fidelis's nodes and window forms; written results
/// open their stores through `storage`.
pub struct PhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
    storage: Arc<Storage>,
}

impl PhysicalCodec {
    pub fn new(storage: Arc<Storage>) -> Self {
        PhysicalCodec { ballista: BallistaPhysicalExtensionCodec::default(), storage }
    }
}

impl fmt::Debug for PhysicalCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fidelis PhysicalCodec")
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (tagged(buf), inputs) {
            (Some(payload), [input]) => {
                Ok(Arc::new(WriteResultExec::new(Arc::clone(input), folder(payload)?, Arc::clone(&self.storage))))
            }
            (Some(_), _) => Err(DataFusionError::Internal("a written result has one input".into())),
            (None, _) => self.ballista.try_decode(buf, inputs, ctx, converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match node.downcast_ref::<WriteResultExec>() {
            Some(write) => {
                tag(buf, write.folder().as_bytes());
                Ok(())
            }
            None => self.ballista.try_encode(node, buf, converter),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        decode_window(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_window(node, buf);
        Ok(())
    }
}
