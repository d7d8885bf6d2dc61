//! ecoreco: e-commerce behaviour analytics, customer segments and product
//! recommendations as a loadable DuckDB extension.

pub mod rng;
pub mod segment;
pub mod als;
pub mod recommend;
pub mod evaluate;
