//! Real time: replaying events one by one against a trained model, with
//! incremental per-user state, the ALS fold-in, a fresh top-k after every
//! event, windowed metrics and InfluxDB monitoring.
//!
//! - [`clock`]: tumbling windows, the watermark, late events, pacing;
//! - [`state`]: per-user and per-product state;
//! - [`foldin`]: the exact least-squares fold-in (Woodbury / Cholesky);
//! - [`replay`]: the driver, partitioned by user, with latency measurement;
//! - [`lineproto`]: InfluxDB line protocol; [`http`]: the writer.

pub mod clock;
pub mod foldin;
pub mod http;
pub mod lineproto;
pub mod replay;
pub mod state;

#[cfg(test)]
mod tests;
