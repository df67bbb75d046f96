//! How span ids group into blocks.
//!
//! The writer numbers spans itself and groups the numbers into blocks: span `id` is in block
//! `id >> BLOCK_SHIFT`. A block is the unit of the block directory (`span_blocks`: start-time
//! range and trace filter), and a chunk never straddles one.

/// log2 of the number of span ids in one block.
pub(crate) const BLOCK_SHIFT: u32 = 11;
/// Span ids per block.
pub(crate) const BLOCK_ROWS: i64 = 1 << BLOCK_SHIFT;
