pub mod csr;
pub mod solver;
